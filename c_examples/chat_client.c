/* Two-way chat, client side: both sides type freely.
 * usage: chat_client [options] <host> <port>   (options: --frame F, --quit WORD, --timeout MS, -4, -6, -h) */
#include <sockflow.h>

int main(int argc, char **argv)
{
    sockflow_args args;
    int rc = sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_CLIENT);
    if (rc == 0)
        rc = sockflow_chat_client_run(&args, stdin, stdout);
    return sockflow_exit_code(rc);
}
