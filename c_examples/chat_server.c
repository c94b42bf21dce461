/* Two-way chat, server side: waits for one client, then both type freely.
 * usage: chat_server [options] [host] <port>   (options: --frame F, --quit WORD, --timeout MS, -4, -6, -h) */
#include <sockflow.h>

int main(int argc, char **argv)
{
    sockflow_args args;
    int rc = sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_SERVER);
    if (rc == 0)
        rc = sockflow_chat_server_run(&args, stdin, stdout);
    return sockflow_exit_code(rc);
}
