/* A chat room: a client's first line is its nickname, later lines go to the others as "nick: text",
 * "/who" lists the nicknames, "/quit" leaves. usage: chat_room [options] [host] <port> */
#include <sockflow.h>
#include <stdio.h>
#include <string.h>

#define ROOM 256
static char nicks[ROOM][32], line[70000]; /* a slot per member ("" = free); callbacks run on one thread */

static int tell_others(sockflow_conn *conn, const char *a, const char *b, const char *c)
{
    int n = snprintf(line, sizeof line, "%s%s%s", a, b, c);
    sockflow_conn_broadcast(conn, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1, 0);
    return SOCKFLOW_ACTION_CONTINUE;
}

static int on_message(void *userdata, sockflow_conn *conn, const char *msg, size_t len)
{
    char *nick = sockflow_conn_user(conn);
    int i = 0;
    if (nick == NULL) { /* the first line: the nickname */
        while (i < ROOM && nicks[i][0]) i++;
        if (i == ROOM || len == 0 || len >= sizeof nicks[i] || memchr(msg, 0, len))
            return sockflow_conn_send_str(conn, "* the room is full, or that nickname is empty or too long"), SOCKFLOW_ACTION_CLOSE;
        sockflow_conn_set_user(conn, memcpy(nicks[i], msg, len + 1));
        return tell_others(conn, "* ", nicks[i], " joined");
    }
    if (strcmp(msg, "/who") != 0) /* "/quit" leaves */
        return strcmp(msg, "/quit") == 0 ? SOCKFLOW_ACTION_CLOSE : tell_others(conn, nick, ": ", msg);
    for (line[0] = '\0'; i < ROOM; i++)
        if (nicks[i][0])
            strcat(strcat(line, line[0] ? "," : ""), nicks[i]);
    return sockflow_conn_send_str(conn, line), (void)userdata, SOCKFLOW_ACTION_CONTINUE;
}

static void on_close(void *userdata, sockflow_conn *conn, int reason)
{
    char *nick = sockflow_conn_user(conn);
    if (nick != NULL)
        tell_others(conn, "* ", nick, " left"), nick[0] = '\0';
    (void)userdata, (void)reason;
}

int main(int argc, char **argv)
{
    sockflow_args args;
    sockflow_handler handler = {NULL, on_message, on_close, 0};
    int rc = sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_SERVER);
    args.workers = 1; /* the room's table has no lock: its callbacks must run on one thread, whatever --workers says */
    return sockflow_exit_code(rc == 0 ? sockflow_tcp_server_run(&args, handler, NULL) : rc);
}
