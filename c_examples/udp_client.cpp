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
    sockflow_udp *sock = nullptr;
    char reply[4096];
    if (rc == 0)
        rc = sockflow_udp_connect_args(&args, &sock);
    if (rc == 0)
        rc = sockflow_udp_set_timeout(sock, args.timeout_ms > 0 ? args.timeout_ms : 2000);
    if (rc == 0)
        rc = sockflow_udp_send(sock, "hello server!", 13);
    ssize_t n = rc == 0 ? sockflow_udp_recvfrom(sock, reply, sizeof reply, nullptr) : rc;
    if (n >= 0) {
        std::cout << "Received from server: " << reply << std::endl;
        n = sockflow_udp_send(sock, "exit", 4);
    }
    if (n < 0 && rc != SOCKFLOW_EUSAGE && rc != SOCKFLOW_EHELP) {
        char why[256];
        sockflow_last_error(why, sizeof why);
        std::cerr << "udp_client_cpp: " << why << std::endl;
    }
    sockflow_udp_close(sock);
    return sockflow_exit_code(n < 0 ? static_cast<int>(n) : 0);
}
