/*
 * prim_tcp_client: sends each line of stdin to a TCP echo server and prints
 * the reply, using sockflow's primitives.
 *
 *     ./prim_tcp_client [options] <host> <port>
 *
 * Stops after sending the quit word ("quit", or --quit WORD) or at end of
 * input. --frame must match the server's; --timeout MS bounds the connect.
 */
#include <stdio.h>
#include <string.h>

#include "sockflow.h"

int main(int argc, char **argv)
{
    static char line[65536 + 2];  /* a line, its newline and a NUL */
    static char reply[65536 + 1]; /* the longest default frame, and the NUL recv_msg adds */
    sockflow_args a;
    sockflow_tcp *server = NULL;
    sockflow_addr peer;
    ssize_t n = 0;
    int rc;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((rc = sockflow_args_parse(&a, argc, argv, SOCKFLOW_ROLE_CLIENT)) != 0)
        return sockflow_exit_code(rc);
    if ((rc = sockflow_tcp_connect_args(&a, &server)) != 0)
        return sockflow_perror(a.prog, rc);
    (void)sockflow_tcp_peer(server, &peer);
    fprintf(stderr, "%s: connected to %s port %d\n", a.prog, peer.ip, peer.port);

    while (fgets(line, sizeof line, stdin) != NULL) {
        size_t len = strlen(line);
        len -= len > 0 && line[len - 1] == '\n'; /* a line ends in "\n" or "\r\n" */
        len -= len > 0 && line[len - 1] == '\r';
        line[len] = '\0';
        if ((n = sockflow_tcp_send_msg(server, line, len)) != 0
            || (n = sockflow_tcp_recv_msg(server, reply, sizeof reply)) < 0)
            break;
        printf("echo: %s\n", reply);
        if (a.quit[0] != '\0' && strcmp(line, a.quit) == 0)
            break;
    }
    sockflow_tcp_close(server);
    return n < 0 ? sockflow_perror(a.prog, (int)n) : 0;
}
