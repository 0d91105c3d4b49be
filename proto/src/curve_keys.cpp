#include "kneeload/proto/curve_keys.hpp"

#include <zmq.h>

#include <array>
#include <cstdint>
#include <fstream>
#include <sstream>

namespace kneeload::proto {

bool valid_curve_key(std::string_view key) {
  if (key.size() != 40) return false;
  const std::string text(key);
  std::array<std::uint8_t, 32> bytes{};
  return zmq_z85_decode(bytes.data(), text.c_str()) != nullptr;
}

CurveKeyPair generate_curve_key_pair() {
  std::array<char, 41> pub{}, sec{};
  zmq_curve_keypair(pub.data(), sec.data());
  return {std::string(pub.data(), 40), std::string(sec.data(), 40)};
}

std::string format_key_file(const CurveKeyPair& pair, bool with_secret) {
  std::string t = with_secret ? "# kneeload CURVE key pair (kneeloadctl keygen). SECRET: keep it mode 0600, never share it.\n"
                              : "# kneeload CURVE public key (kneeloadctl keygen): safe to hand out.\n";
  t += "public_key = \"" + pair.public_key + "\"\n";
  if (with_secret) t += "secret_key = \"" + pair.secret_key + "\"\n";
  return t;
}

std::optional<CurveKeyPair> parse_key_file(std::string_view text, std::string& error) {
  CurveKeyPair pair;
  std::istringstream in{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    const std::size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos || line[start] == '#') continue;
    const std::size_t eq = line.find('=');
    const std::size_t q1 = line.find('"', eq == std::string::npos ? 0 : eq);
    const std::size_t q2 = q1 == std::string::npos ? q1 : line.find('"', q1 + 1);
    if (eq == std::string::npos || q2 == std::string::npos) {
      error = "line " + std::to_string(number) + ": expected name = \"Z85 key\", got \"" + line + "\"";
      return std::nullopt;
    }
    std::string name = line.substr(start, eq - start);
    name.erase(name.find_last_not_of(" \t") + 1);
    const std::string value = line.substr(q1 + 1, q2 - q1 - 1);
    if (name != "public_key" && name != "secret_key") {
      error = "line " + std::to_string(number) + ": expected public_key or secret_key, got \"" + name + "\"";
      return std::nullopt;
    }
    if (!valid_curve_key(value)) {
      error = "line " + std::to_string(number) + ": expected a 40-character Z85 " + name + ", got \"" + value + "\"";
      return std::nullopt;
    }
    (name == "public_key" ? pair.public_key : pair.secret_key) = value;
  }
  if (pair.public_key.empty()) {
    error = "expected public_key = \"...\" (kneeloadctl keygen), got none";
    return std::nullopt;
  }
  return pair;
}

std::optional<CurveKeyPair> read_key_file(const std::string& path, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read \"" + path + "\"";
    return std::nullopt;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::optional<CurveKeyPair> pair = parse_key_file(ss.str(), error);
  if (!pair) error = "\"" + path + "\": " + error;
  return pair;
}

}  // namespace kneeload::proto
