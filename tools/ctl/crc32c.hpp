// CRC-32C (Castagnoli): the checksum of every kneeloadctl recording record.
//
// Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF, i.e. the CRC that
// iSCSI, ext4 and LevelDB use; crc32c("123456789") == 0xE3069283. Table-driven, one byte per
// step (≈ 0.5–1 GB/s), which is far above what a recording needs. Chosen over zlib's CRC-32
// for its better error detection on short messages; written here so the tool needs no library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace kneeload::ctl {

// Returns the CRC-32C of `data` continued from `crc` (the value a previous call returned), so a
// record can be checksummed in pieces: crc32c(b, crc32c(a)) == crc32c(a ‖ b).
std::uint32_t crc32c(std::span<const std::byte> data, std::uint32_t crc = 0);

}  // namespace kneeload::ctl
