// The tutorial's C++ UDP server (seed 000), on sockflow: UDP on port 12345
// by default (or ./udp_server_cpp [options] [host] <port>). It prints each
// datagram with its sender and, unlike the tutorial's, answers it, so a
// client waiting for a reply never hangs.
#include <sockflow.h>
#include <iostream>
#include <string>

static int on_message(void *, sockflow_conn *conn, const char *msg, size_t len)
{
    sockflow_addr from;
    sockflow_conn_peer(conn, &from);
    std::cout << "Received " << std::string(msg, len) << " from " << from.ip << ":" << from.port << std::endl;
    return sockflow_conn_send_str(conn, "Hello, client!") < 0 ? SOCKFLOW_ACTION_CLOSE : SOCKFLOW_ACTION_CONTINUE;
}

int main(int argc, char **argv)
{
    sockflow_args args;
    int rc = argc > 1 ? sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_SERVER)
                      : sockflow_args_init(&args, SOCKFLOW_ROLE_SERVER, "0.0.0.0", 12345);
    const sockflow_handler answer = {nullptr, on_message, nullptr, 0};
    return sockflow_exit_code(rc != 0 ? rc : sockflow_udp_server_run(&args, answer, nullptr));
}
