#include "advgrad/data/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <system_error>

#include "advgrad/core/error.h"
#include "advgrad/core/fault.h"

namespace advgrad {
namespace {

// strerror is not thread-safe; images are read from several threads at once.
std::string os_error(int err) { return std::generic_category().message(err); }

// Closes the descriptor on every exit path, including exceptions.
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path, uint64_t max_bytes) {
  // O_NONBLOCK: a FIFO planted under a data file's name must not hang the open (it is rejected below);
  // reads from a regular file ignore the flag.
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK)};
  if (f.fd < 0) {
    int err = errno;
    throw IOError(path + ": " + (err == ENOENT ? std::string("no such file") : "cannot open: " + os_error(err)));
  }
  // fstat on the open descriptor, not stat on the name: the size belongs to the file we actually read.
  struct stat st;
  if (::fstat(f.fd, &st) != 0) throw IOError(path + ": cannot stat: " + os_error(errno));
  if (S_ISDIR(st.st_mode)) throw IOError(path + ": is a directory, expected a file");
  if (!S_ISREG(st.st_mode)) throw IOError(path + ": not a regular file");
  const uint64_t size = uint64_t(st.st_size);
  if (size > max_bytes)
    throw IOError(path + ": " + std::to_string(size) + " bytes is more than the " + std::to_string(max_bytes) +
                  "-byte limit for a data file");

  std::vector<uint8_t> bytes(size);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::read(f.fd, bytes.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw IOError(path + ": read failed: " + os_error(errno));
    if (n == 0) throw IOError(path + ": file shrank while being read (" + std::to_string(done) + " of " +
                              std::to_string(size) + " bytes)");
    done += size_t(n);
  }
  return bytes;
}

PathKind path_kind(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) return S_ISDIR(st.st_mode) ? PathKind::Directory : PathKind::Other;
  const int err = errno;
  if (err == ENOENT || err == ENOTDIR) {
    struct stat lst;
    if (::lstat(path.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode))
      throw IOError(path + ": broken symbolic link (its target does not exist)");
    return PathKind::Missing;
  }
  throw IOError(path + ": cannot access: " + os_error(err));
}

void require_directory(const std::string& dir) {
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0) {
    int err = errno;
    throw IOError(dir + (err == ENOENT ? std::string(": no such directory") : ": cannot access: " + os_error(err)));
  }
  if (!S_ISDIR(st.st_mode)) throw IOError(dir + ": is not a directory");
}

void write_file_atomic(const std::string& path, const void* data, size_t size) {
  // Same directory as the target, so rename() stays within one file system and is atomic; pid and a
  // counter keep two processes or threads writing the same path from sharing a temporary.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter++);
  auto fail = [&](const std::string& what, int err) {
    ::unlink(tmp.c_str());
    throw IOError(path + ": cannot write: " + what + ": " + os_error(err));
  };
  {
    Fd f{::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (f.fd < 0) {
      int err = errno;  // saved before building the message, which may allocate
      fail("cannot create " + tmp, err);
    }
    const auto* p = static_cast<const uint8_t*>(data);
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::write(f.fd, p + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) fail("write", errno);
      done += size_t(n);
    }
    if (::fsync(f.fd) != 0) fail("fsync", errno);
    int fd = f.fd;
    f.fd = -1;
    if (::close(fd) != 0) fail("close", errno);
  }
  fault_point_before_rename();  // a crash test may end the process here (core/fault.h)
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("rename", errno);
}

}  // namespace advgrad
