// The tutorial's C++ UDP client (seed 000), on sockflow: sends "hello
// server!" to 127.0.0.1:12345 by default (or ./udp_client_cpp [options]
// <host> <port>), prints the reply, then sends "exit". Unlike the
// tutorial's, it gives up after a timeout (--timeout MS, default 2000)
// instead of blocking forever when no server answers.
#include <sockflow.hpp>
#include <iostream>

int main(int argc, char **argv)
{
    return sockflow::run_main(argc, argv, [&] {
        auto args = argc > 1 ? sockflow::args::parse(argc, argv, SOCKFLOW_ROLE_CLIENT) : sockflow::args(SOCKFLOW_ROLE_CLIENT, "127.0.0.1", 12345);
        auto sock = sockflow::udp_socket::connect(args);
        sock.set_timeouts(std::chrono::milliseconds(args.timeout_ms > 0 ? args.timeout_ms : 2000), sockflow::forever);
        sock.send("hello server!");
        std::string reply = sock.recv_from();
        std::cout << "Received from server: " << reply << std::endl;
        sock.send("exit");
    });
}
