// libbpf prints through one global callback; the addon captures its warnings (the verifier log
// among them) per thread, so that a failed load can say why it failed.
#pragma once

#include <bpf/libbpf.h>
#include <stdarg.h>

#include <string>

namespace bpfproxy {

int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args);
void InstallLibbpfLogger();

// While alive, libbpf messages on this thread are collected instead of printed.
class LibbpfLogCapture {
 public:
  LibbpfLogCapture();
  ~LibbpfLogCapture();
  // The last `max` bytes of what was collected.
  std::string Tail(size_t max = 4096) const;

 private:
  LibbpfLogCapture* prev_;
  std::string text_;
  friend int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list args);
};

}  // namespace bpfproxy
