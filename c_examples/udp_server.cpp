// The tutorial's C++ UDP server (seed 000), on sockflow: UDP on port 12345
// by default (or ./udp_server_cpp [options] [host] <port>). It prints each
// datagram with its sender and, unlike the tutorial's, answers it, so a
// client waiting for a reply never hangs.
#include <sockflow.hpp>
#include <iostream>

int main(int argc, char **argv)
{
    return sockflow::run_main(argc, argv, [&] {
        auto args = argc > 1 ? sockflow::args::parse(argc, argv, SOCKFLOW_ROLE_SERVER) : sockflow::args(SOCKFLOW_ROLE_SERVER, "0.0.0.0", 12345);
        sockflow::udp_server_run(args, [](sockflow::conn &c, std::string_view msg) {
            sockflow_addr from = c.peer();
            std::cout << "Received " << msg << " from " << from.ip << ":" << from.port << std::endl;
            c.send("Hello, client!");
        });
    });
}
