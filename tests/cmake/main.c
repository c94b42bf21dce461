/* One echo on loopback through the primitives: listen on a free port,
 * connect, accept, send a line each way. Prints "VERSION echo: ping". */
#include <stdio.h>
#include <string.h>

#include <sockflow.h>

static int fail(const char *what, int rc)
{
    char msg[256];
    sockflow_last_error(msg, sizeof msg);
    fprintf(stderr, "%s: %d %s\n", what, rc, msg);
    return 1;
}

int main(void)
{
    sockflow_tcp_listener *l = NULL;
    sockflow_tcp *client = NULL, *served = NULL;
    char buf[64];
    int rc = sockflow_tcp_listen("127.0.0.1", 0, 0, &l);
    if (rc != 0)
        return fail("listen", rc);
    if ((rc = sockflow_tcp_connect("127.0.0.1", sockflow_tcp_listener_port(l), 10000, &client)) != 0)
        return fail("connect", rc);
    if ((rc = sockflow_tcp_accept(l, 10000, &served, NULL)) != 0)
        return fail("accept", rc);
    if ((rc = sockflow_tcp_send_msg(client, "ping", 4)) != 0)
        return fail("send", rc);
    ssize_t n = sockflow_tcp_recv_msg(served, buf, sizeof buf);
    if (n < 0)
        return fail("recv on the server side", (int)n);
    if ((rc = sockflow_tcp_send_msg(served, buf, (size_t)n)) != 0)
        return fail("echo", rc);
    n = sockflow_tcp_recv_msg(client, buf, sizeof buf);
    if (n < 0)
        return fail("recv the echo", (int)n);
    printf("%s echo: %s\n", sockflow_version(), buf);
    sockflow_tcp_close(served);
    sockflow_tcp_close(client);
    sockflow_tcp_listener_close(l);
    return strcmp(buf, "ping") != 0;
}
