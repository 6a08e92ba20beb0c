// A request parked until a refresh of a fetched key set ends (jwt with jwks_url): an intrusive
// node of that source's per-worker list, kept in the request's PolicyRequest, so parking
// allocates nothing. Touched only on its worker's thread.
#pragma once
#include <memory>

namespace lg::auth {

class JwksSource;

struct KeyWait {
  KeyWait* prev = nullptr;
  KeyWait* next = nullptr;
  void (*wake)(void*) = nullptr;  // called on the worker's thread once the node is unlinked
  void* arg = nullptr;
  std::shared_ptr<JwksSource> source;  // keeps the list (in the source) alive while linked

  bool linked() const { return next != nullptr; }
  // Leaves the list (the request gave up: timeout, client gone).
  void unlink() {
    prev->next = next;
    next->prev = prev;
    prev = next = nullptr;
    source.reset();  // last: may free the list this node was on
  }
};

}  // namespace lg::auth
