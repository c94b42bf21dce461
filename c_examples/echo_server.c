/* The echo server: whatever a client sends goes back to it byte for byte
 * (raw frames by default; --frame line echoes line by line), many clients at once.
 * usage: echo_server [options] [host] <port>   (options: --frame F, --quit WORD, --timeout MS, -4, -6, -h) */
#include <sockflow.h>

int main(int argc, char **argv)
{
    sockflow_args args;
    int rc = sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_SERVER | SOCKFLOW_ARGS_RAW);
    if (rc == 0)
        rc = sockflow_tcp_server_run(&args, sockflow_handler_echo(), NULL);
    return sockflow_exit_code(rc);
}
