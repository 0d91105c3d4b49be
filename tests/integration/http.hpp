// A minimal HTTP/1.0 GET for tests that talk to the daemon's metrics endpoint and to a real
// Prometheus server, and a parser for the Prometheus text exposition format.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <optional>
#include <sstream>
#include <string>

namespace kneeload::testing {

struct HttpResponse {
  int status = 0;
  std::string body;
};

// GET http://host:port/path (IPv4 host), with an Authorization header when `authorization` is
// set ("Basic dXNlcjpwYXNz"). nullopt when the connection fails.
inline std::optional<HttpResponse> http_get(const std::string& host_port, const std::string& path,
                                            const std::string& authorization = {}) {
  const auto colon = host_port.rfind(':');
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(std::stoi(host_port.substr(colon + 1))));
  if (::inet_pton(AF_INET, host_port.substr(0, colon).c_str(), &addr.sin_addr) != 1) return std::nullopt;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return std::nullopt;
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return std::nullopt;
  }
  const std::string request = "GET " + path + " HTTP/1.0\r\nHost: " + host_port + "\r\nConnection: close\r\n" +
                              (authorization.empty() ? "" : "Authorization: " + authorization + "\r\n") + "\r\n";
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(request.size())) {
    ::close(fd);
    return std::nullopt;
  }
  std::string raw;
  char buf[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    raw.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fd);
  HttpResponse r;
  if (std::sscanf(raw.c_str(), "HTTP/%*s %d", &r.status) != 1) return std::nullopt;
  const auto body = raw.find("\r\n\r\n");
  if (body != std::string::npos) r.body = raw.substr(body + 4);
  return r;
}

inline std::string url_encode(const std::string& s) {
  std::string out;
  for (const unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      out += hex;
    }
  }
  return out;
}

// The text exposition format: each sample line "name{labels} value" keyed by "name{labels}"
// exactly as printed; HELP and TYPE lines by metric family name.
struct Exposition {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> help;
  std::map<std::string, std::string> type;

  std::optional<double> get(const std::string& series) const {
    const auto it = samples.find(series);
    if (it == samples.end()) return std::nullopt;
    return it->second;
  }
  bool has_label(const std::string& label_pair) const {  // e.g. station="st2"
    for (const auto& [k, v] : samples) {
      if (k.find(label_pair) != std::string::npos) return true;
    }
    return false;
  }
};

inline Exposition parse_exposition(const std::string& text) {
  Exposition e;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line.rfind("# HELP ", 0) == 0 || line.rfind("# TYPE ", 0) == 0) {
      const std::string rest = line.substr(7);
      const auto sp = rest.find(' ');
      (line[2] == 'H' ? e.help : e.type)[rest.substr(0, sp)] = sp == std::string::npos ? "" : rest.substr(sp + 1);
      continue;
    }
    if (line[0] == '#') continue;
    const auto sp = line.rfind(' ');
    e.samples[line.substr(0, sp)] = std::strtod(line.c_str() + sp + 1, nullptr);
  }
  return e;
}

}  // namespace kneeload::testing
