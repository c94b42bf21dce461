/* UDP heartbeat monitor: "UP <ip> <port>" when a sender is first heard,
 * "DOWN <ip> <port>" once it has been silent for --timeout MS (default 2000).
 * usage: heartbeat_monitor [options] [host] <port> [--timeout MS] */
#include <sockflow.h>
#include <stdio.h>

static void show(sockflow_conn *conn, const char *state)
{
    sockflow_addr a;
    if (sockflow_conn_peer(conn, &a) == 0)
        printf("%s %s %d\n", state, a.ip, a.port), fflush(stdout);
}
static int up(void *ud, sockflow_conn *c) { (void)ud; show(c, "UP"); return SOCKFLOW_ACTION_CONTINUE; }
static int beat(void *ud, sockflow_conn *c, const char *m, size_t n) { (void)ud, (void)c, (void)m, (void)n; return SOCKFLOW_ACTION_CONTINUE; }
static void down(void *ud, sockflow_conn *c, int why) { (void)ud; if (why == SOCKFLOW_CLOSE_REASON_IDLE) show(c, "DOWN"); }

int main(int argc, char **argv)
{
    sockflow_args args;
    sockflow_server_config cfg;
    sockflow_server *s = NULL;
    sockflow_handler h = {up, beat, down, 0};
    int rc = sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_SERVER);
    if (rc != 0)
        return sockflow_exit_code(rc);
    sockflow_server_config_init(&cfg);
    cfg.udp_peers = 1;      /* each sender is a connection: on_connect, on_close */
    cfg.handle_signals = 1; /* Ctrl-C stops cleanly */
    cfg.idle_timeout_ms = args.timeout_ms > 0 ? args.timeout_ms : 2000;
    if ((rc = sockflow_udp_server_new(&args, &cfg, h, NULL, &s)) == 0)
        rc = sockflow_server_run(s);
    sockflow_server_close(s);
    return rc < 0 ? sockflow_perror(args.prog, rc) : 0;
}
