/*
 * prim_tcp_server: a one-client TCP echo server on sockflow's primitives.
 *
 *     ./prim_tcp_server [options] [host] <port>      (port 0 = any free port)
 *
 * Listens, prints "prim_tcp_server: listening on HOST port N" to stderr,
 * accepts one client, then echoes every message back until the client sends
 * the quit word ("quit", or --quit WORD) or closes the connection. Messages
 * are framed as --frame says: line (default), fixed:N, len32 or raw.
 */
#include <stdio.h>
#include <string.h>

#include "sockflow.h"

int main(int argc, char **argv)
{
    static char msg[65536 + 1]; /* the longest default frame, and the NUL recv_msg adds */
    sockflow_args a;
    sockflow_tcp_listener *listener = NULL;
    sockflow_tcp *client = NULL;
    sockflow_addr peer;
    ssize_t n;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0); /* a killed server still shows its log */
    if ((rc = sockflow_args_parse(&a, argc, argv, SOCKFLOW_ROLE_SERVER)) != 0)
        return sockflow_exit_code(rc); /* usage or --help already printed */
    if ((rc = sockflow_tcp_listen_args(&a, &listener)) != 0)
        return sockflow_perror(a.prog, rc);
    fprintf(stderr, "%s: listening on %s port %d\n", a.prog, a.host, sockflow_tcp_listener_port(listener));
    rc = sockflow_tcp_accept(listener, SOCKFLOW_FOREVER, &client, &peer);
    sockflow_tcp_listener_close(listener);
    if (rc != 0)
        return sockflow_perror(a.prog, rc);
    printf("client ip = %s port = %d\n", peer.ip, peer.port);

    /* Echo until the client closes (SOCKFLOW_ECLOSED: not an error) or sends the quit word. */
    while ((n = sockflow_tcp_recv_msg(client, msg, sizeof msg)) >= 0) {
        printf("received: %s\n", msg);
        rc = sockflow_tcp_send_msg(client, msg, (size_t)n);
        if (rc != 0 || (a.quit[0] != '\0' && strcmp(msg, a.quit) == 0))
            break;
    }
    rc = n < 0 && n != SOCKFLOW_ECLOSED ? (int)n : rc;
    rc = rc != 0 ? sockflow_perror(a.prog, rc) : 0;
    printf("client closed\n");
    sockflow_tcp_close(client);
    return rc;
}
