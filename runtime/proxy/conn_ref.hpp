// Keeps a ClientConnection alive while one of its handlers is pending (non-atomic: one thread).
#pragma once
#include "proxy/client_connection.hpp"

namespace lg {

class ConnRef {
 public:
  explicit ConnRef(ClientConnection* c) : c_(c) { c_->add_ref(); }
  ConnRef(ConnRef&& o) noexcept : c_(o.c_) { o.c_ = nullptr; }
  ConnRef(const ConnRef&) = delete;
  ConnRef& operator=(const ConnRef&) = delete;
  ~ConnRef() {
    if (c_) c_->release();
  }
  ClientConnection* operator->() const { return c_; }

 private:
  ClientConnection* c_;
};

}  // namespace lg
