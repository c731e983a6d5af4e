#include "server/security/certificate_reloader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/security/test_certificates.h"

namespace fusion::security {
namespace {

using ::testing::HasSubstr;

class CertificateReloaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    certs_.MakeCa("ca");
    certs_.MakeLeaf("first", "ca");
    certs_.MakeLeaf("second", "ca");
    certs_.Replace("tls.crt", "first.crt");
    certs_.Replace("tls.key", "first.key");
    files_.cert = certs_.Path("tls.crt");
    files_.key = certs_.Path("tls.key");
  }

  std::string Subject(const CertificateReloader& reloader) {
    return reloader.current().material->summary;
  }

  TestCertificates certs_;
  TlsFiles files_;
};

TEST_F(CertificateReloaderTest, StartsWithTheFilesOrTheirError) {
  auto reloader = CertificateReloader::Create(files_);
  ASSERT_TRUE(reloader.ok()) << reloader.status();
  EXPECT_EQ((*reloader)->current().generation, 1u);
  EXPECT_THAT(Subject(**reloader), HasSubstr("CN = first"));

  files_.key = certs_.Path("second.key");
  auto mismatched = CertificateReloader::Create(files_);
  EXPECT_EQ(mismatched.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CertificateReloaderTest, UnchangedFilesAreNotReread) {
  auto reloader = CertificateReloader::Create(files_);
  ASSERT_TRUE(reloader.ok());
  (*reloader)->ReloadIfChanged();
  (*reloader)->ReloadIfChanged();
  EXPECT_EQ((*reloader)->current().generation, 1u);
}

TEST_F(CertificateReloaderTest, PicksUpARotatedPair) {
  auto reloader = CertificateReloader::Create(files_);
  ASSERT_TRUE(reloader.ok());
  certs_.Replace("tls.crt", "second.crt");
  certs_.Replace("tls.key", "second.key");
  (*reloader)->ReloadIfChanged();
  EXPECT_EQ((*reloader)->current().generation, 2u);
  EXPECT_THAT(Subject(**reloader), HasSubstr("CN = second"));
}

TEST_F(CertificateReloaderTest, AHalfReplacedPairKeepsTheOldOneUntilDone) {
  auto reloader = CertificateReloader::Create(files_);
  ASSERT_TRUE(reloader.ok());
  certs_.Replace("tls.crt", "second.crt");  // the key is still the first's
  (*reloader)->ReloadIfChanged();
  EXPECT_EQ((*reloader)->current().generation, 1u);
  EXPECT_THAT(Subject(**reloader), HasSubstr("CN = first"));
  certs_.Replace("tls.key", "second.key");
  (*reloader)->ReloadIfChanged();
  EXPECT_EQ((*reloader)->current().generation, 2u);
  EXPECT_THAT(Subject(**reloader), HasSubstr("CN = second"));
}

TEST_F(CertificateReloaderTest, ReloadRereadsNowAndReportsBrokenFiles) {
  auto reloader = CertificateReloader::Create(files_);
  ASSERT_TRUE(reloader.ok());
  EXPECT_TRUE((*reloader)->Reload().ok());
  EXPECT_EQ((*reloader)->current().generation, 2u);

  certs_.Write("tls.key", "garbage\n");
  const absl::Status broken = (*reloader)->Reload();
  EXPECT_EQ(broken.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(broken.message(), HasSubstr(certs_.Path("tls.key")));
  EXPECT_EQ((*reloader)->current().generation, 2u);
  EXPECT_THAT(Subject(**reloader), HasSubstr("CN = first"));
}

TEST_F(CertificateReloaderTest, ARotatedClientCaIsPickedUp) {
  certs_.MakeCa("ca2");
  certs_.Replace("client_ca.crt", "ca.crt");
  files_.client_ca = certs_.Path("client_ca.crt");
  auto reloader = CertificateReloader::Create(files_);
  ASSERT_TRUE(reloader.ok()) << reloader.status();
  certs_.Replace("client_ca.crt", "ca2.crt");
  (*reloader)->ReloadIfChanged();
  EXPECT_EQ((*reloader)->current().material->client_ca_pem,
            certs_.Read("ca2.crt"));
}

}  // namespace
}  // namespace fusion::security
