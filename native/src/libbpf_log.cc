#include "libbpf_log.h"

#include <bpf/libbpf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

namespace bpfproxy {

static thread_local LibbpfLogCapture* current = nullptr;

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args) {
  static const bool debug = getenv("BPFPROXY_LIBBPF_DEBUG") != nullptr;
  if (level == LIBBPF_DEBUG && !debug) return 0;
  if (current == nullptr) return vfprintf(stderr, fmt, args);
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), fmt, args);
  current->text_.append(buf, n < 0 ? 0 : (n >= (int)sizeof(buf) ? sizeof(buf) - 1 : n));
  return n;
}

void InstallLibbpfLogger() { libbpf_set_print(LibbpfPrint); }

LibbpfLogCapture::LibbpfLogCapture() : prev_(current) { current = this; }
LibbpfLogCapture::~LibbpfLogCapture() { current = prev_; }

std::string LibbpfLogCapture::Tail(size_t max) const {
  if (text_.size() <= max) return text_;
  return "…" + text_.substr(text_.size() - max);
}

}  // namespace bpfproxy
