/* many_echo: c_examples/echo_server.c with room for more than the default
 * 10,000 connections (sockflow_server_config.max_conns), for the bench's
 * 100,000 idle connection scenario. Otherwise the same: the command-line
 * options of echo_server, sockflow_handler_echo(), the event loop.
 * usage: many_echo [options] [host] <port>   (runs until killed) */
#include <sockflow.h>

int main(int argc, char **argv)
{
    sockflow_args args;
    sockflow_server_config cfg;
    sockflow_server *server = NULL;
    int rc = sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_SERVER | SOCKFLOW_ARGS_RAW);
    if (rc == 0)
        rc = sockflow_server_config_init(&cfg);
    if (rc == 0) {
        cfg.max_conns = 1000000;
        rc = sockflow_tcp_server_new(&args, &cfg, sockflow_handler_echo(), NULL, &server);
    }
    if (rc == 0)
        rc = sockflow_server_run(server);
    return sockflow_exit_code(rc);
}
