#include "server/security/tls_material.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/security/test_certificates.h"

namespace fusion::security {
namespace {

using ::testing::HasSubstr;

class TlsMaterialTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    certs_ = new TestCertificates();
    certs_->MakeCa("ca");
    certs_->MakeLeaf("server", "ca");
    certs_->MakeLeaf("other", "ca");
  }
  static void TearDownTestSuite() { delete certs_; }

  static TlsFiles Files(const std::string& cert, const std::string& key,
                        const std::string& client_ca = "") {
    TlsFiles files;
    files.cert = certs_->Path(cert);
    files.key = certs_->Path(key);
    if (!client_ca.empty()) files.client_ca = certs_->Path(client_ca);
    return files;
  }

  static TestCertificates* certs_;
};
TestCertificates* TlsMaterialTest::certs_ = nullptr;

TEST_F(TlsMaterialTest, LoadsAPairAndDescribesIt) {
  auto material = LoadTlsMaterial(Files("server.crt", "server.key"));
  ASSERT_TRUE(material.ok()) << material.status();
  EXPECT_EQ((*material)->cert_chain_pem, certs_->Read("server.crt"));
  EXPECT_EQ((*material)->private_key_pem, certs_->Read("server.key"));
  EXPECT_THAT((*material)->summary, HasSubstr("CN = server"));
  EXPECT_THAT((*material)->summary, HasSubstr("valid until"));
  EXPECT_FALSE((*material)->outside_validity);
  EXPECT_TRUE((*material)->client_ca_pem.empty());
  EXPECT_EQ((*material)->client_ca_store, nullptr);
}

TEST_F(TlsMaterialTest, LoadsAClientCa) {
  auto material = LoadTlsMaterial(Files("server.crt", "server.key", "ca.crt"));
  ASSERT_TRUE(material.ok()) << material.status();
  EXPECT_EQ((*material)->client_ca_pem, certs_->Read("ca.crt"));
  ASSERT_NE((*material)->client_ca_store, nullptr);
  EXPECT_EQ(sk_X509_NAME_num((*material)->client_ca_names.get()), 1);
}

TEST_F(TlsMaterialTest, KeepsIntermediatesAfterTheLeaf) {
  certs_->Write("chain.crt",
                certs_->Read("server.crt") + certs_->Read("ca.crt"));
  auto material = LoadTlsMaterial(Files("chain.crt", "server.key"));
  ASSERT_TRUE(material.ok()) << material.status();
  EXPECT_EQ((*material)->intermediates.size(), 1u);
}

TEST_F(TlsMaterialTest, MissingFilesAreNamedWithTheirFlag) {
  auto cert = LoadTlsMaterial(Files("absent.crt", "server.key"));
  EXPECT_EQ(cert.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(cert.status().message(),
              HasSubstr("--tls_cert " + certs_->Path("absent.crt")));
  auto key = LoadTlsMaterial(Files("server.crt", "absent.key"));
  EXPECT_THAT(key.status().message(),
              HasSubstr("--tls_key " + certs_->Path("absent.key")));
  auto ca = LoadTlsMaterial(Files("server.crt", "server.key", "absent.crt"));
  EXPECT_THAT(ca.status().message(),
              HasSubstr("--tls_client_ca " + certs_->Path("absent.crt")));
}

TEST_F(TlsMaterialTest, TheFlagPrefixNamesTheFlag) {
  TlsFiles files = Files("absent.crt", "server.key");
  files.flag_prefix = "--http_tls";
  EXPECT_THAT(LoadTlsMaterial(files).status().message(),
              HasSubstr("--http_tls_cert "));
}

TEST_F(TlsMaterialTest, RefusesFilesWithoutPem) {
  certs_->Write("empty.crt", "");
  certs_->Write("text.crt", "not a certificate\n");
  for (const char* file : {"empty.crt", "text.crt"}) {
    auto material = LoadTlsMaterial(Files(file, "server.key"));
    EXPECT_EQ(material.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(material.status().message(),
                HasSubstr(certs_->Path(file) + ": holds no PEM certificate"));
  }
  // A certificate where the key should be.
  auto key = LoadTlsMaterial(Files("server.crt", "server.crt"));
  EXPECT_THAT(key.status().message(),
              HasSubstr("--tls_key " + certs_->Path("server.crt") +
                        ": holds no usable PEM private key"));
  // A key where the client CA should be.
  auto ca = LoadTlsMaterial(Files("server.crt", "server.key", "server.key"));
  EXPECT_THAT(ca.status().message(),
              HasSubstr("--tls_client_ca " + certs_->Path("server.key")));
}

TEST_F(TlsMaterialTest, RefusesADamagedCertificate) {
  std::string pem = certs_->Read("server.crt");
  pem[pem.size() / 2] = '*';  // inside the base64 body
  certs_->Write("damaged.crt", pem);
  auto material = LoadTlsMaterial(Files("damaged.crt", "server.key"));
  EXPECT_EQ(material.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(material.status().message(),
              HasSubstr(certs_->Path("damaged.crt")));
}

TEST_F(TlsMaterialTest, RefusesAKeyOfAnotherCertificate) {
  auto material = LoadTlsMaterial(Files("server.crt", "other.key"));
  EXPECT_EQ(material.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(material.status().message(),
              HasSubstr("--tls_key " + certs_->Path("other.key") +
                        " does not match the certificate in --tls_cert " +
                        certs_->Path("server.crt")));
}

TEST_F(TlsMaterialTest, RefusesAnEncryptedKeyWithoutPrompting) {
  ASSERT_EQ(std::system(("openssl pkey -in " + certs_->Path("server.key") +
                         " -aes256 -passout pass:secret -out " +
                         certs_->Path("encrypted.key") + " 2>/dev/null")
                            .c_str()),
            0);
  auto material = LoadTlsMaterial(Files("server.crt", "encrypted.key"));
  EXPECT_EQ(material.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(material.status().message(),
              HasSubstr(certs_->Path("encrypted.key")));
}

}  // namespace
}  // namespace fusion::security
