package moulin.sqlendpoint;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.util.HexFormat;
import java.util.List;

import javax.crypto.SecretKeyFactory;
import javax.crypto.spec.PBEKeySpec;
import javax.security.sasl.AuthenticationException;

import org.apache.hive.service.auth.PasswdAuthenticationProvider;

/**
 * Checks a user's password against moulin's users file (hive.server2.authentication=CUSTOM).
 *
 * <p>The file (mode 0600, written by moulin.platform.sql_endpoint.users from the per-user
 * password secrets) holds one line per user: {@code user:iterations:salt_hex:hash_hex}, the
 * hash being PBKDF2-HMAC-SHA256 of the password. It is read at each login, so a new password
 * file takes effect without a restart. Its path is the system property
 * {@code moulin.sql.endpoint.users}.
 */
public final class PasswordFile implements PasswdAuthenticationProvider {
  public static final String PROPERTY = "moulin.sql.endpoint.users";

  @Override
  public void Authenticate(String user, String password) throws AuthenticationException {
    String location = System.getProperty(PROPERTY);
    if (location == null || location.isEmpty()) {
      throw new AuthenticationException("moulin's SQL endpoint has no users file (" + PROPERTY + " unset)");
    }
    List<String> lines;
    try {
      lines = Files.readAllLines(Path.of(location), StandardCharsets.UTF_8);
    } catch (IOException e) {
      throw new AuthenticationException("cannot read the users file " + location + ": " + e.getMessage(), e);
    }
    for (String line : lines) {
      String[] parts = line.trim().split(":");
      if (parts.length != 4 || !parts[0].equals(user)) {
        continue;
      }
      if (password == null || !matches(password, Integer.parseInt(parts[1]), parts[2], parts[3])) {
        throw new AuthenticationException("wrong password for user " + user);
      }
      return;
    }
    throw new AuthenticationException("unknown user " + user + " (not in " + location + ")");
  }

  static boolean matches(String password, int iterations, String saltHex, String hashHex)
      throws AuthenticationException {
    HexFormat hex = HexFormat.of();
    byte[] expected = hex.parseHex(hashHex);
    try {
      PBEKeySpec spec = new PBEKeySpec(password.toCharArray(), hex.parseHex(saltHex), iterations, expected.length * 8);
      byte[] actual = SecretKeyFactory.getInstance("PBKDF2WithHmacSHA256").generateSecret(spec).getEncoded();
      return MessageDigest.isEqual(expected, actual);
    } catch (GeneralSecurityException e) {
      throw new AuthenticationException("cannot hash the password: " + e.getMessage(), e);
    }
  }
}
