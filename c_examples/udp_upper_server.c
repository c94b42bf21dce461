/* The uppercase UDP server: replies with the message in upper case.
 * usage: udp_upper_server [options] [host] <port>   (options: --frame F, --quit WORD, --timeout MS, -4, -6, -h) */
#include <sockflow.h>

int main(int argc, char **argv)
{
    sockflow_args args;
    int rc = sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_SERVER);
    if (rc == 0)
        rc = sockflow_udp_server_run(&args, sockflow_handler_upper(), NULL);
    return sockflow_exit_code(rc);
}
