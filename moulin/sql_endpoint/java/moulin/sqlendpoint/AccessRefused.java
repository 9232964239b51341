package moulin.sqlendpoint;

import org.apache.spark.SparkThrowable;

/** A query refused by {@link QueryGuard}; its message says what is refused and what to do instead. */
public final class AccessRefused extends RuntimeException implements SparkThrowable {
  public AccessRefused(String message) {
    super(message);
  }

  @Override
  public String getCondition() {
    return "MOULIN_ACCESS_REFUSED";
  }

  @Override
  public String getSqlState() {
    return "42501"; // insufficient privilege
  }

  @Override
  public boolean isInternalError() {
    return false;
  }

  @Override
  public String toString() {
    return getMessage();
  }
}
