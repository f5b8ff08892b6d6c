// Atomic file writes (temp file in the same directory, fsync, rename) and whole-file reads.
// Used by safetensors checkpoints and by every writer of run files (config.json, summary.json).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "io/safetensors.h"

namespace gs::io {

namespace {
std::string parent_dir(const std::string& path) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}
}  // namespace

AtomicFile::AtomicFile(const std::string& path) : path_(path) {
  GS_CHECK(!path.empty(), "write_file_atomic: empty path");
  // pid + counter keeps concurrent writers (threads, processes) off each other's temp files.
  static std::atomic<uint64_t> counter{0};
  temp_path_ = path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  fd_ = ::open(temp_path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  GS_CHECK(fd_ >= 0, "write_file_atomic: cannot create a temp file next to %s (%s) in directory %s", path.c_str(),
           std::strerror(errno), parent_dir(path).c_str());
}

AtomicFile::~AtomicFile() {
  if (!committed_) discard();
}

void AtomicFile::discard() noexcept {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (!temp_path_.empty()) ::unlink(temp_path_.c_str());
}

void AtomicFile::write(const void* data, size_t nbytes) {
  GS_CHECK(fd_ >= 0, "write_file_atomic: %s is already committed or discarded", path_.c_str());
  const char* p = static_cast<const char*>(data);
  while (nbytes > 0) {
    ssize_t n = ::write(fd_, p, nbytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int err = n < 0 ? errno : EIO;
      discard();
      GS_CHECK(false, "write_file_atomic: writing %s failed (%s); the old file is left unchanged", path_.c_str(),
               std::strerror(err));
    }
    p += n;
    nbytes -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  GS_CHECK(fd_ >= 0, "write_file_atomic: %s is already committed or discarded", path_.c_str());
  if (::fsync(fd_) != 0) {
    int err = errno;
    discard();
    GS_CHECK(false, "write_file_atomic: fsync of %s failed (%s)", temp_path_.c_str(), std::strerror(err));
  }
  int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) {
    int err = errno;
    discard();
    GS_CHECK(false, "write_file_atomic: closing %s failed (%s)", temp_path_.c_str(), std::strerror(err));
  }
  if (::rename(temp_path_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    discard();
    GS_CHECK(false, "write_file_atomic: cannot replace %s (%s); the old file is left unchanged", path_.c_str(),
             std::strerror(err));
  }
  committed_ = true;
  // The rename is durable only once the directory entry is on disk; failure here loses nothing.
  int dir_fd = ::open(parent_dir(path_).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    ::fsync(dir_fd);
    ::close(dir_fd);
  }
}

void write_file_atomic(const std::string& path, const std::string& contents) {
  AtomicFile file(path);
  file.write(contents);
  file.commit();
}

std::string read_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  GS_CHECK(fd >= 0, "read_file: cannot open %s (%s)", path.c_str(), std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    ::close(fd);
    GS_CHECK(false, "read_file: %s is not a readable file", path.c_str());
  }
  std::string out;
  out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      GS_CHECK(false, "read_file: reading %s failed (%s)", path.c_str(), std::strerror(err));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

}  // namespace gs::io
