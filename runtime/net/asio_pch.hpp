// Precompiled header for the Asio-based runtime layer (see CMakeLists.txt).
#pragma once
#include <utility>  // Boost 1.74 asio uses std::exchange without including it
#include <boost/asio.hpp>
#include <spdlog/spdlog.h>
#include <string>
#include <vector>
