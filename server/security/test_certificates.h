// Test-only: real certificates made with the openssl CLI in a temporary
// directory (removed on destruction). Each leaf carries the names
// localhost and 127.0.0.1 and may serve as a server or a client
// certificate. Aborts the test binary when openssl fails: nothing
// meaningful can be tested without it.
#ifndef FUSION_SERVER_SECURITY_TEST_CERTIFICATES_H_
#define FUSION_SERVER_SECURITY_TEST_CERTIFICATES_H_

#include <string>

namespace fusion::security {

class TestCertificates {
 public:
  TestCertificates();
  ~TestCertificates();
  TestCertificates(const TestCertificates&) = delete;
  TestCertificates& operator=(const TestCertificates&) = delete;

  // A self-signed CA: <name>.crt, <name>.key.
  void MakeCa(const std::string& name);
  // A leaf signed by CA `ca`, common name `name`: <name>.crt, <name>.key.
  void MakeLeaf(const std::string& name, const std::string& ca);

  // The path of `file` in the directory.
  std::string Path(const std::string& file) const;
  // Copies `from` over `to` (both in the directory) by writing a temporary
  // file and renaming it, as a rotation tool would.
  void Replace(const std::string& to, const std::string& from) const;
  void Write(const std::string& file, const std::string& contents) const;
  std::string Read(const std::string& file) const;

 private:
  void Run(const std::string& command) const;
  std::string dir_;
};

}  // namespace fusion::security

#endif  // FUSION_SERVER_SECURITY_TEST_CERTIFICATES_H_
