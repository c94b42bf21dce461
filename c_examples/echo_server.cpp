// The echo server in C++: whatever a client sends goes back to it byte for byte
// (raw frames by default; --frame line echoes line by line), many clients at once.
// usage: echo_server_cpp [options] [host] <port>   (options: --frame F, --quit WORD, --timeout MS, -4, -6, -h)
#include <sockflow.hpp>

int main(int argc, char **argv)
{
    return sockflow::run_main(argc, argv, [&] {
        auto args = sockflow::args::parse(argc, argv, SOCKFLOW_ROLE_SERVER | SOCKFLOW_ARGS_RAW);
        sockflow::tcp_server_run(args, [](sockflow::conn &c, std::string_view msg) { c.send(msg); });
    });
}
