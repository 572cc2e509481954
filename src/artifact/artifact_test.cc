#include "artifact/artifact.h"

#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace lichen::artifact {
namespace {

namespace fs = std::filesystem;

struct ZipEntry {
  std::string name;
  std::string data;
  int type = AE_IFREG;  // AE_IFDIR, AE_IFLNK (data = target)
  int perm = 0644;
};

void WriteZip(const fs::path& path, const std::vector<ZipEntry>& entries) {
  archive* a = archive_write_new();
  archive_write_set_format_zip(a);
  ASSERT_EQ(archive_write_open_filename(a, path.c_str()), ARCHIVE_OK);
  for (const auto& e : entries) {
    archive_entry* entry = archive_entry_new();
    archive_entry_set_pathname(entry, e.name.c_str());
    archive_entry_set_filetype(entry, static_cast<unsigned>(e.type));
    archive_entry_set_perm(entry, static_cast<mode_t>(e.perm));
    if (e.type == AE_IFLNK) {
      archive_entry_set_symlink(entry, e.data.c_str());
    } else if (e.type == AE_IFREG) {
      archive_entry_set_size(entry, static_cast<la_int64_t>(e.data.size()));
    }
    archive_write_header(a, entry);
    if (e.type == AE_IFREG) archive_write_data(a, e.data.data(), e.data.size());
    archive_entry_free(entry);
  }
  archive_write_close(a);
  archive_write_free(a);
}

class ArtifactTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lichen-artifact-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path Write(const std::string& rel, const std::string& data) {
    fs::create_directories((dir_ / rel).parent_path());
    std::ofstream(dir_ / rel, std::ios::binary) << data;
    return dir_ / rel;
  }
  fs::path dir_;
};

TEST_F(ArtifactTest, DigestsAreBase64OfTheRawHash) {
  auto f = Write("abc.txt", "abc");
  // Known values: SHA-256("abc") and MD5("abc"), base64-encoded.
  EXPECT_EQ(*FileDigest(f.string(), "SHA-256"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  EXPECT_EQ(*FileDigest(f.string(), "sha256"), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
  EXPECT_EQ(*FileDigest(f.string(), "MD5"), "kAFQmDzST7DWlj99KOF/cg==");
  EXPECT_FALSE(FileDigest(f.string(), "CRC32"));
  EXPECT_FALSE(FileDigest((dir_ / "missing").string(), "SHA-256"));
}

TEST_F(ArtifactTest, VerifyDigestNamesBothValues) {
  auto f = Write("abc.txt", "abc");
  recipe::Artifact a;
  a.uri = "s3://b/abc.txt";
  EXPECT_TRUE(VerifyDigest(f.string(), a));  // no digest in the recipe: nothing to check
  a.algorithm = "SHA-256";
  a.digest = "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
  EXPECT_TRUE(VerifyDigest(f.string(), a));
  a.digest = "AAAAv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
  auto bad = VerifyDigest(f.string(), a);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().code, "ARTIFACT_CHECKSUM_MISMATCH");
  EXPECT_NE(bad.error().message.find("ungWv48B"), std::string::npos);
  EXPECT_NE(bad.error().message.find("AAAAv48B"), std::string::npos);
}

TEST_F(ArtifactTest, UnarchivesZipIntoItsOwnFolder) {
  WriteZip(dir_ / "app.zip", {{"app/", "", AE_IFDIR, 0755},
                              {"app/run.sh", "#!/bin/sh\necho hi\n", AE_IFREG, 0755},
                              {"app/data.txt", "data", AE_IFREG, 0600}});
  const std::string dest = UnarchiveDir((dir_ / "unarchived").string(), "app.zip");
  EXPECT_EQ(dest, (dir_ / "unarchived" / "app").string());
  auto r = UnarchiveZip((dir_ / "app.zip").string(), dest);
  ASSERT_TRUE(r) << r.error().message;
  std::ifstream in(fs::path(dest) / "app" / "data.txt");
  std::string data((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(data, "data");
  struct stat st {};
  ASSERT_EQ(::stat((fs::path(dest) / "app" / "run.sh").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0755u);
  ASSERT_EQ(::stat((fs::path(dest) / "app" / "data.txt").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);  // readable by all, as the reference makes it
  // Unpacking again replaces the folder.
  ASSERT_TRUE(UnarchiveZip((dir_ / "app.zip").string(), dest));
}

TEST_F(ArtifactTest, ZipEntriesCannotEscape) {
  const std::vector<std::vector<ZipEntry>> evil = {
      {{"ok.txt", "fine"}, {"../escaped.txt", "evil"}},
      {{"a/../../escaped.txt", "evil"}},
      {{"/tmp/absolute-escape.txt", "evil"}},
      {{"link", "/etc", AE_IFLNK, 0777}},
  };
  int i = 0;
  for (const auto& entries : evil) {
    const fs::path zip = dir_ / ("evil" + std::to_string(i++) + ".zip");
    WriteZip(zip, entries);
    const fs::path dest = dir_ / "out" / "evil";
    auto r = UnarchiveZip(zip.string(), dest.string());
    ASSERT_FALSE(r) << entries.back().name;
    EXPECT_EQ(r.error().code, "ARTIFACT_UNARCHIVE_ERROR");
    EXPECT_NE(r.error().message.find(entries.back().name), std::string::npos)
        << r.error().message << " / " << entries.back().name;
    EXPECT_FALSE(fs::exists(dest));  // nothing of a refused archive is kept
    EXPECT_FALSE(fs::exists(dir_ / "out" / "escaped.txt"));
    EXPECT_FALSE(fs::exists(dir_ / "escaped.txt"));
  }
  EXPECT_FALSE(fs::exists("/tmp/absolute-escape.txt"));
}

TEST_F(ArtifactTest, CorruptZipIsAClearError) {
  auto f = Write("broken.zip", "PK\x03\x04 this is not really a zip");
  auto r = UnarchiveZip(f.string(), (dir_ / "out").string());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, "ARTIFACT_UNARCHIVE_ERROR");
  EXPECT_NE(r.error().message.find("broken.zip"), std::string::npos);
}

TEST_F(ArtifactTest, PermissionsFollowTheRecipe) {
  auto f = Write("tool", "x");
  recipe::Permission p;  // defaults: Read OWNER, Execute NONE
  ASSERT_TRUE(ApplyPermission(f.string(), p, std::nullopt));
  struct stat st {};
  ::stat(f.c_str(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0400u);
  p.read = recipe::PermissionType::kAll;
  p.execute = recipe::PermissionType::kOwner;
  ASSERT_TRUE(ApplyPermission(f.string(), p, Owner{65534, 65534}));
  ::stat(f.c_str(), &st);
  EXPECT_EQ(st.st_mode & 0777, 0544u);
  if (::geteuid() == 0) {
    EXPECT_EQ(st.st_uid, 65534u);
  }
}

TEST_F(ArtifactTest, CopiesLocalArtifactsAndChecksThem) {
  Write("artifacts/com.example.App/1.0.0/app.py", "print('hi')\n");
  recipe::Artifact a;
  a.uri = "s3://bucket/path/app.py";
  auto copied = CopyLocalArtifact((dir_ / "artifacts").string(), "com.example.App", "1.0.0", a,
                                  (dir_ / "store").string());
  ASSERT_TRUE(copied) << copied.error().message;
  EXPECT_EQ(*copied, (dir_ / "store" / "app.py").string());
  EXPECT_TRUE(fs::exists(*copied));

  a.uri = "s3://bucket/missing.py";
  auto missing = CopyLocalArtifact((dir_ / "artifacts").string(), "com.example.App", "1.0.0", a,
                                   (dir_ / "store").string());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, "LOCAL_ARTIFACT_NOT_FOUND");
  EXPECT_NE(missing.error().message.find("com.example.App/1.0.0/missing.py"), std::string::npos);

  a.uri = "s3://bucket/path/app.py";
  a.algorithm = "SHA-256";
  a.digest = "AAAAv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=";
  fs::remove(dir_ / "store" / "app.py");
  auto mismatch = CopyLocalArtifact((dir_ / "artifacts").string(), "com.example.App", "1.0.0", a,
                                    (dir_ / "store").string());
  ASSERT_FALSE(mismatch);
  EXPECT_EQ(mismatch.error().code, "ARTIFACT_CHECKSUM_MISMATCH");
  EXPECT_TRUE(fs::is_empty(dir_ / "store"));  // no partial or bad file left behind
}

}  // namespace
}  // namespace lichen::artifact
