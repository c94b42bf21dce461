/* A TCP proxy: each client gets its own upstream connection; bytes are relayed exactly
 * both ways, a slow side slows the other, and a close closes the other side once sent.
 * usage: proxy [options] <listen-port> <upstream-host> <upstream-port>   (options first) */
#include <sockflow.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static sockflow_args args, up; /* the listening side; the upstream host and port */

/* Each side's user pointer holds the other side's id (the upstream's is given to connect). */
static int on_connect(void *ud, sockflow_conn *c)
{
    (void)ud;
    if (sockflow_conn_user(c)) /* the upstream side: paired already */
        return SOCKFLOW_ACTION_CONTINUE;
    uint64_t *client = malloc(sizeof *client), *upstream = malloc(sizeof *upstream);
    int ms = args.timeout_ms > 0 ? args.timeout_ms : 10000; /* --timeout, else 10 s */
    if (client && upstream && (*client = sockflow_conn_id(c)) != 0 &&
        sockflow_conn_connect(c, up.host, up.port, ms, client, upstream) == 0)
        return sockflow_conn_set_user(c, upstream);
    free(client);
    free(upstream);
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
        sockflow_conn_close_id(c, *other);
    free(other);
}

int main(int argc, char **argv)
{
    sockflow_handler h = { on_connect, on_message, on_close, 0 };
    char *upv[] = { argv[0], argv[argc > 2 ? argc - 2 : 0], argv[argc - 1] };
    int rc = sockflow_args_parse(&args, argc < 4 ? argc : argc - 2, argv, SOCKFLOW_ROLE_SERVER | SOCKFLOW_ARGS_RAW);
    if (rc == 0 && argc < 4 && fprintf(stderr, "usage: %s [options] <listen-port> <upstream-host> <upstream-port>\n", args.prog))
        rc = SOCKFLOW_EUSAGE;
    if (rc == 0 && (rc = sockflow_args_parse(&up, 3, upv, SOCKFLOW_ROLE_CLIENT)) == 0) {
        args.quit[0] = '\0'; /* bytes are relayed, never taken as a quit word */
        rc = sockflow_tcp_server_run(&args, h, NULL);
    }
    return sockflow_exit_code(rc);
}
