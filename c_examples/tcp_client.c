/* The tutorial's TCP client: sends each line of stdin, prints the replies;
 * "quit" or EOF ends it.
 * usage: tcp_client [options] <host> <port>   (options: --frame F, --quit WORD, --timeout MS, -4, -6, -h) */
#include <sockflow.h>

int main(int argc, char **argv)
{
    sockflow_args args;
    int rc = sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_CLIENT);
    if (rc == 0)
        rc = sockflow_tcp_client_run(&args, stdin, stdout);
    return sockflow_exit_code(rc);
}
