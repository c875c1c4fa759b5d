// Stands in for a manylinux wheel's extension module: C++ that needs libstdc++.so.6.
#include <string>

extern "C" int fastcore_length(const char *text) {
    return static_cast<int>(std::string(text).size());
}
