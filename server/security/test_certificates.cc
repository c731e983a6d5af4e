#include "server/security/test_certificates.h"

#include <stdlib.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace fusion::security {

TestCertificates::TestCertificates() {
  char pattern[] = "/tmp/fusion-tls-test-XXXXXX";
  const char* dir = mkdtemp(pattern);
  if (dir == nullptr) {
    std::perror("mkdtemp");
    std::abort();
  }
  dir_ = dir;
}

TestCertificates::~TestCertificates() { std::filesystem::remove_all(dir_); }

std::string TestCertificates::Path(const std::string& file) const {
  return absl::StrCat(dir_, "/", file);
}

void TestCertificates::Run(const std::string& command) const {
  const std::string line = absl::StrCat("cd '", dir_, "' && (", command,
                                        ") >/dev/null 2>openssl.err");
  if (std::system(line.c_str()) != 0) {
    std::fprintf(stderr, "failed: %s\n%s\n", command.c_str(),
                 Read("openssl.err").c_str());
    std::abort();
  }
}

void TestCertificates::MakeCa(const std::string& name) {
  Run(absl::StrCat(
      "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
      "-nodes -days 2 -subj /CN=",
      name, " -keyout ", name, ".key -out ", name, ".crt"));
}

void TestCertificates::MakeLeaf(const std::string& name,
                                const std::string& ca) {
  Write(name + ".ext",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        "extendedKeyUsage=serverAuth,clientAuth\n"
        "basicConstraints=CA:FALSE\n");
  Run(absl::StrCat(
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
      "-subj /CN=",
      name, " -keyout ", name, ".key -out ", name, ".csr && ",
      "openssl x509 -req -days 2 -in ", name, ".csr -CA ", ca, ".crt -CAkey ",
      ca, ".key -set_serial 0x$(openssl rand -hex 8) -extfile ", name,
      ".ext -out ", name, ".crt"));
}

void TestCertificates::Replace(const std::string& to,
                               const std::string& from) const {
  Write(to + ".new", Read(from));
  std::filesystem::rename(Path(to + ".new"), Path(to));
}

void TestCertificates::Write(const std::string& file,
                             const std::string& contents) const {
  std::ofstream(Path(file), std::ios::binary) << contents;
}

std::string TestCertificates::Read(const std::string& file) const {
  std::ifstream in(Path(file), std::ios::binary);
  std::stringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace fusion::security
