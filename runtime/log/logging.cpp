#include "log/logging.hpp"

#include <fcntl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace lg {

void setup_error_log(const LogConfig& cfg) {
  std::shared_ptr<spdlog::logger> logger;
  if (cfg.error == "stderr") logger = std::make_shared<spdlog::logger>("lunagate", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  else if (cfg.error == "stdout") logger = std::make_shared<spdlog::logger>("lunagate", std::make_shared<spdlog::sinks::stdout_sink_mt>());
  else logger = std::make_shared<spdlog::logger>("lunagate", std::make_shared<spdlog::sinks::basic_file_sink_mt>(cfg.error));
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z [%l] %v");
  logger->set_level(spdlog::level::from_str(cfg.level));
  logger->flush_on(spdlog::level::info);  // the event log is low-volume; never lose the last lines
  spdlog::set_default_logger(logger);
}

int open_access_log_fd(const LogConfig& cfg) {
  if (cfg.access == "off") return -1;
  if (cfg.access == "stdout") return STDOUT_FILENO;
  if (cfg.access == "stderr") return STDERR_FILENO;
  int fd = ::open(cfg.access.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("log.access: cannot open '" + cfg.access + "': " + std::strerror(errno));
  return fd;
}

}  // namespace lg
