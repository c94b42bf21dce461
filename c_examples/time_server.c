/* Sends every client a line with the current UTC time (ISO 8601) every interval.
 * usage: time_server [options] [host] <port> [--interval MS]   (default 1000 ms) */
#define _POSIX_C_SOURCE 200112L
#include <sockflow.h>
#include <string.h>
#include <time.h>

static int tick(void *userdata, sockflow_server *server, uint64_t timer_id)
{
    char line[32];
    struct tm tm;
    time_t now = time(NULL);
    (void)userdata, (void)timer_id;
    strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    sockflow_server_broadcast(server, line, strlen(line));
    return SOCKFLOW_ACTION_CONTINUE;
}

static int ignore(void *userdata, sockflow_conn *conn, const char *msg, size_t len)
{
    (void)userdata, (void)conn, (void)msg, (void)len;
    return SOCKFLOW_ACTION_CONTINUE;
}

int main(int argc, char **argv)
{
    sockflow_args args;
    sockflow_server_config cfg;
    sockflow_server *server = NULL;
    sockflow_handler handler = {NULL, ignore, NULL, 0};
    int interval, rc = sockflow_args_take_int(&argc, argv, "--interval", 1000, &interval);
    if (rc == 0)
        rc = sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_SERVER);
    if (rc < 0)
        return sockflow_exit_code(rc);
    sockflow_server_config_init(&cfg);
    cfg.handle_signals = 1;
    rc = sockflow_tcp_server_new(&args, &cfg, handler, NULL, &server);
    if (rc == 0)
        rc = sockflow_server_timer_add(server, interval, interval, tick, NULL, NULL);
    if (rc == 0)
        rc = sockflow_server_run(server);
    sockflow_server_close(server);
    return rc < 0 ? sockflow_perror(args.prog, rc) : 0;
}
