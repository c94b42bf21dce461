/* A custom server set up the way a program without a command line does it
 * (sockflow_args_init + sockflow_server_config_init). It echoes each line;
 * "odd" makes on_message return 7, which is no sockflow_action; on_close
 * prints "closed <reason>". Driven by tests/callback_edges.rs. */
#include <sockflow.h>
#include <stdio.h>
#include <string.h>

static int on_message(void *ud, sockflow_conn *c, const char *msg, size_t len)
{
    (void)ud;
    if (strcmp(msg, "odd") == 0)
        return 7;
    return sockflow_conn_send(c, msg, len) == 0 ? SOCKFLOW_ACTION_CONTINUE : -1;
}

static void on_close(void *ud, sockflow_conn *c, int reason)
{
    (void)ud, (void)c;
    printf("closed %d\n", reason);
    fflush(stdout);
}

int main(void)
{
    sockflow_args a;
    sockflow_server_config cfg;
    sockflow_server *s = NULL;
    sockflow_handler h = {NULL, on_message, on_close, 0};
    int rc = sockflow_args_init(&a, SOCKFLOW_ROLE_SERVER, "127.0.0.1", 0);
    if (rc == 0)
        rc = sockflow_server_config_init(&cfg);
    cfg.handle_signals = 1;
    if (rc == 0)
        rc = sockflow_tcp_server_new(&a, &cfg, h, NULL, &s);
    if (rc == 0)
        rc = sockflow_server_run(s);
    sockflow_server_free(s);
    return rc < 0 ? sockflow_perror("callback_edges", rc) : 0;
}
