// The replacement allocation functions of live_bytes_new.hpp.
#include "live_bytes_new.hpp"

#include <algorithm>
#include <cstdlib>
#include <new>

namespace {

// The header keeps the block's size and, when counted, the lead from the base (so delete can
// find it); 16 bytes keep the returned pointer aligned for any fundamental type.
constexpr std::size_t kHeader = 16;
struct Header {
  std::size_t size;
  std::size_t counted;  // the lead to the base when counted, else 0
};

bool g_counting = false;
std::int64_t g_live = 0;  // counted bytes live now, since the last begin()
std::int64_t g_peak = 0;
std::uint64_t g_news = 0;
bool g_record_next = false;
std::size_t g_recorded = 0;

void* counted_alloc(std::size_t size, std::size_t align) {
  const std::size_t lead = std::max(kHeader, align);
  void* base = align > kHeader ? std::aligned_alloc(align, (lead + size + align - 1) / align * align)
                               : std::malloc(lead + size);
  if (base == nullptr) return nullptr;
  char* p = static_cast<char*>(base) + lead;
  auto* h = reinterpret_cast<Header*>(p - kHeader);
  h->size = size;
  h->counted = g_counting ? lead : 0;
  if (g_counting) {
    g_live += static_cast<std::int64_t>(size);
    g_peak = std::max(g_peak, g_live);
    ++g_news;
    if (g_record_next) {
      g_recorded = size;
      g_record_next = false;
    }
  }
  return p;
}

// Not inlined: g++ 12 otherwise sees free() on a pointer from operator new where our operator
// delete is inlined, and -Wmismatched-new-delete fires on correct code.
[[gnu::noinline]] void counted_free(void* ptr, std::size_t align) {
  if (ptr == nullptr) return;
  char* p = static_cast<char*>(ptr);
  const auto* h = reinterpret_cast<const Header*>(p - kHeader);
  const std::size_t lead = h->counted != 0 ? h->counted : std::max(kHeader, align);
  if (h->counted != 0) g_live -= static_cast<std::int64_t>(h->size);
  std::free(p - lead);
}

void* must(void* p) {
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

namespace kneeload::live_bytes {

void begin() {
  g_live = 0;
  g_peak = 0;
  g_news = 0;
  g_counting = true;
}

Measured end() {
  g_counting = false;
  return {g_live, g_peak, g_news};
}

std::int64_t live() { return g_live; }

void record_next_size() { g_record_next = true; }
std::size_t recorded_size() { return g_recorded; }

}  // namespace kneeload::live_bytes

void* operator new(std::size_t size) { return must(counted_alloc(size, 0)); }
void* operator new[](std::size_t size) { return must(counted_alloc(size, 0)); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return counted_alloc(size, 0); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return counted_alloc(size, 0); }
void* operator new(std::size_t size, std::align_val_t al) {
  return must(counted_alloc(size, static_cast<std::size_t>(al)));
}
void* operator new[](std::size_t size, std::align_val_t al) {
  return must(counted_alloc(size, static_cast<std::size_t>(al)));
}
void* operator new(std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_alloc(size, static_cast<std::size_t>(al));
}
void* operator new[](std::size_t size, std::align_val_t al, const std::nothrow_t&) noexcept {
  return counted_alloc(size, static_cast<std::size_t>(al));
}
void operator delete(void* p) noexcept { counted_free(p, 0); }
void operator delete[](void* p) noexcept { counted_free(p, 0); }
void operator delete(void* p, std::size_t) noexcept { counted_free(p, 0); }
void operator delete[](void* p, std::size_t) noexcept { counted_free(p, 0); }
void operator delete(void* p, const std::nothrow_t&) noexcept { counted_free(p, 0); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { counted_free(p, 0); }
void operator delete(void* p, std::align_val_t al) noexcept { counted_free(p, static_cast<std::size_t>(al)); }
void operator delete[](void* p, std::align_val_t al) noexcept { counted_free(p, static_cast<std::size_t>(al)); }
void operator delete(void* p, std::size_t, std::align_val_t al) noexcept {
  counted_free(p, static_cast<std::size_t>(al));
}
void operator delete[](void* p, std::size_t, std::align_val_t al) noexcept {
  counted_free(p, static_cast<std::size_t>(al));
}
void operator delete(void* p, std::align_val_t al, const std::nothrow_t&) noexcept {
  counted_free(p, static_cast<std::size_t>(al));
}
void operator delete[](void* p, std::align_val_t al, const std::nothrow_t&) noexcept {
  counted_free(p, static_cast<std::size_t>(al));
}
