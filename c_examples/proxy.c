/* A TCP proxy: each client gets its own upstream connection; bytes are relayed exactly both ways,
 * a slow side slows the other, and a close closes the other side once sent. TLS and unix: on either
 * side, e.g. proxy --tls-cert c.pem --tls-key k.pem 8443 --tls-ca ca.pem localhost 9000 (or unix:PATH).
 * The upstream's --timeout bounds its connect and TLS handshake (default 10 s). */
#include <sockflow.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static sockflow_args args, up; /* the listening side (tcp_server's options); the upstream (tcp_client's) */

/* Each side's user pointer holds the other side's id (the upstream's is given to connect). */
static int on_connect(void *ud, sockflow_conn *c)
{
    (void)ud;
    if (sockflow_conn_user(c)) /* the upstream side: paired already */
        return SOCKFLOW_ACTION_CONTINUE;
    uint64_t *client = malloc(sizeof *client), *upstream = malloc(sizeof *upstream);
    if (client && upstream && (*client = sockflow_conn_id(c)) != 0 && sockflow_conn_connect_args(c, &up, client, upstream) == 0)
        return sockflow_conn_set_user(c, upstream);
    free(client), free(upstream);
    return SOCKFLOW_ACTION_CLOSE;
}

static int on_message(void *ud, sockflow_conn *c, const char *msg, size_t len)
{
    (void)ud;
    return sockflow_conn_relay(c, *(uint64_t *)sockflow_conn_user(c), msg, len) == 0 ? 0 : SOCKFLOW_ACTION_CLOSE;
}

static void on_close(void *ud, sockflow_conn *c, int reason)
{
    uint64_t *other = sockflow_conn_user(c);
    char why[512];
    (void)ud;
    if (reason == SOCKFLOW_CLOSE_REASON_CONNECT_FAILED && sockflow_conn_error(c) < 0 && sockflow_last_error(why, sizeof why) > 0)
        fprintf(stderr, "%s: upstream %s: closing the client\n", args.prog, why);
    if (other)
        sockflow_conn_close_id(c, *other), free(other);
}

int main(int argc, char **argv)
{
    sockflow_handler h = {on_connect, on_message, on_close, SOCKFLOW_BUILTIN_NONE};
    int rc = SOCKFLOW_EUSAGE;
    for (int i = 2; i < argc && rc != 0; i++) { /* the first split where both sides parse */
        char *keep = argv[i - 1];
        if (sockflow_args_parse(&args, i, argv, SOCKFLOW_ROLE_SERVER | SOCKFLOW_ARGS_RAW | SOCKFLOW_ARGS_QUIET) != 0)
            continue;
        argv[i - 1] = argv[0]; /* the upstream's argv: argv[0], then what follows the listener's */
        rc = sockflow_args_parse(&up, argc - i + 1, argv + i - 1, SOCKFLOW_ROLE_CLIENT | SOCKFLOW_ARGS_QUIET);
        argv[i - 1] = keep;
    }
    if (rc != 0)
        fprintf(stderr, "usage: %s [listener options] [<host>] <listen-port> [upstream options] <upstream-host> <upstream-port>\n"
                        "  (listener options as tcp_server --help, upstream options as tcp_client --help)\n", argv[0]);
    args.quit[0] = '\0'; /* bytes are relayed, never taken as a quit word */
    up.timeout_ms = up.timeout_ms > 0 ? up.timeout_ms : 10000;
    return sockflow_exit_code(rc != 0 ? rc : sockflow_tcp_server_run(&args, h, NULL));
}
