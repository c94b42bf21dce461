/* A server inside the program's own poll() loop: each line typed on stdin goes to every
 * client, each client message is printed as "<ip> <port>: <msg>", EOF on stdin stops it.
 * usage: console_server [options] [host] <port> */
#define _POSIX_C_SOURCE 200112L
#include <sockflow.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int on_message(void *userdata, sockflow_conn *conn, const char *msg, size_t len)
{
    sockflow_addr from;
    (void)userdata;
    sockflow_conn_peer(conn, &from);
    printf("%s %d: %.*s\n", from.ip, from.port, (int)len, msg);
    fflush(stdout);
    return SOCKFLOW_ACTION_CONTINUE;
}

int main(int argc, char **argv)
{
    sockflow_args args;
    sockflow_server *server = NULL;
    sockflow_handler handler = {NULL, on_message, NULL, SOCKFLOW_BUILTIN_NONE};
    char buf[65536];
    size_t have = 0;
    int rc = sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_SERVER);
    if (rc < 0)
        return sockflow_exit_code(rc);
    rc = sockflow_tcp_server_new(&args, NULL, handler, NULL, &server);
    while (rc == 0 && (rc = sockflow_server_turn(server, 0)) == SOCKFLOW_TURN_RUNNING) {
        struct pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {sockflow_server_fd(server), POLLIN, 0}};
        ssize_t n;
        char *nl;
        int ms = SOCKFLOW_FOREVER;
        if (sockflow_server_timeout(server, &ms) != 0 || poll(fds, 2, ms) <= 0 || !fds[0].revents)
            continue;
        n = read(STDIN_FILENO, buf + have, sizeof buf - have);
        if (n <= 0) {
            sockflow_server_stop(server); /* EOF (or a read error): the next turn closes everything */
            continue;
        }
        have += (size_t)n;
        while ((nl = memchr(buf, '\n', have)) != NULL || have == sizeof buf) {
            size_t len = nl ? (size_t)(nl - buf) : have;
            sockflow_server_broadcast(server, buf, len);
            have -= len + (nl != NULL);
            memmove(buf, buf + len + (nl != NULL), have);
        }
    }
    sockflow_server_close(server);
    return rc < 0 ? sockflow_perror(args.prog, rc) : 0;
}
