// The tutorial's C++ UDP client (seed 000), on sockflow: sends "hello
// server!" to 127.0.0.1:12345 by default (or ./udp_client_cpp [options]
// <host> <port>), prints the reply, then sends "exit". Unlike the
// tutorial's, it gives up after a timeout (--timeout MS, default 2000)
// instead of blocking forever when no server answers.
#include <sockflow.h>
#include <iostream>

int main(int argc, char **argv)
{
    sockflow_args args;
    int rc = argc > 1 ? sockflow_args_parse(&args, argc, argv, SOCKFLOW_ROLE_CLIENT)
                      : sockflow_args_init(&args, SOCKFLOW_ROLE_CLIENT, "127.0.0.1", 12345);
    if (rc != 0)
        return sockflow_exit_code(rc); // usage or --help already printed
    sockflow_udp *sock = nullptr;
    char reply[65536]; // more than the largest datagram, and the NUL recvfrom adds
    ssize_t n = sockflow_udp_connect_args(&args, &sock);
    if (n == 0)
        n = sockflow_udp_set_timeouts(sock, args.timeout_ms > 0 ? args.timeout_ms : 2000, SOCKFLOW_FOREVER);
    if (n == 0)
        n = sockflow_udp_send(sock, "hello server!", 13);
    if (n == 0)
        n = sockflow_udp_recv_from(sock, reply, sizeof reply, nullptr);
    if (n >= 0) {
        std::cout << "Received from server: " << reply << std::endl;
        n = sockflow_udp_send(sock, "exit", 4);
    }
    sockflow_udp_close(sock);
    return n < 0 ? sockflow_perror("udp_client_cpp", static_cast<int>(n)) : 0;
}
