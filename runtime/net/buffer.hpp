// Per-worker fixed-size I/O blocks, recycled through a free list so that steady-state request
// handling never calls malloc. A Buffer is a window [begin, end) over one block.
#pragma once
#include <cstddef>
#include <cstring>
#include <vector>

namespace lg {

class BufferPool {
 public:
  BufferPool(std::size_t block_size, std::size_t max_free) : block_(block_size), max_free_(max_free) {}
  ~BufferPool() {
    for (char* b : free_) delete[] b;
  }
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  char* acquire() {
    if (free_.empty()) return new char[block_];
    char* b = free_.back();
    free_.pop_back();
    return b;
  }
  void release(char* b) {
    if (free_.size() < max_free_) free_.push_back(b);
    else delete[] b;
  }
  std::size_t block_size() const { return block_; }

 private:
  std::size_t block_;
  std::size_t max_free_;
  std::vector<char*> free_;
};

struct Buffer {
  char* data = nullptr;
  std::size_t cap = 0;
  std::size_t begin = 0;  // first unconsumed byte
  std::size_t end = 0;    // one past the last received byte

  bool attached() const { return data != nullptr; }
  std::size_t size() const { return end - begin; }
  bool empty() const { return end == begin; }
  char* read_ptr() const { return data + begin; }
  char* write_ptr() const { return data + end; }
  std::size_t free_space() const { return cap - end; }
  void consume(std::size_t n) {
    begin += n;
    if (begin == end) begin = end = 0;
  }
  // Moves unconsumed bytes to the front so that reads get the whole tail of the block.
  void compact() {
    if (begin == 0) return;
    std::memmove(data, data + begin, end - begin);
    end -= begin;
    begin = 0;
  }
  void attach(BufferPool& pool) {
    data = pool.acquire();
    cap = pool.block_size();
    begin = end = 0;
  }
  void detach(BufferPool& pool) {
    if (data) pool.release(data);
    data = nullptr;
    cap = begin = end = 0;
  }
};

}  // namespace lg
