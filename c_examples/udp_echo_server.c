/* UDP echo: every datagram goes back to its sender unchanged
 * (raw frames by default).
 * usage: udp_echo_server [options] [host] <port>   (options: --frame F, --quit WORD, --timeout MS, -4, -6, -h) */
#include <sockflow.h>

int main(int argc, char **argv)
{
    sockflow_args args;
    int rc = sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_SERVER | SOCKFLOW_ARGS_RAW);
    if (rc == 0)
        rc = sockflow_udp_server_run(&args, sockflow_handler_echo(), NULL);
    return sockflow_exit_code(rc);
}
