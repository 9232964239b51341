package moulin.sqlendpoint;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Instant;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;

import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.catalyst.CurrentUserContext;
import org.apache.spark.sql.catalyst.expressions.Expression;
import org.apache.spark.sql.catalyst.expressions.RuntimeReplaceable;
import org.apache.spark.sql.catalyst.plans.logical.Command;
import org.apache.spark.sql.catalyst.plans.logical.LogicalPlan;
import org.apache.spark.sql.catalyst.plans.logical.View;
import org.apache.spark.sql.execution.command.SetCommand;

import scala.Option;
import scala.Tuple2;
import scala.runtime.AbstractFunction1;
import scala.runtime.BoxedUnit;

/**
 * The check every analysed plan of a JDBC/ODBC session passes (an analyzer check rule).
 *
 * <p>Plans of the session moulin's driver uses to keep the catalog in step ({@link #configure})
 * are trusted; every other session is a client's, whose user the Thrift server sets
 * ({@link CurrentUserContext}). A client's plan is refused unless:
 * <ul>
 *   <li>its user is a reader (a member of the group that reads the curated zone);
 *   <li>every table it reads is a view of moulin's catalog (property {@code moulin.table}) with no
 *       {@code moulin.refusal} property: the refusal is the error's message. The view's own body
 *       (its snapshot's exact files) is not checked further;
 *   <li>it reads nothing else: no file path ({@code parquet.`/path`}), no table outside the catalog;
 *   <li>it is a query, or a command that only reads the catalog (SHOW, DESCRIBE, EXPLAIN, USE,
 *       SET of a spark.sql option): no DDL, DML, cache, jar or function;
 *   <li>it calls no Java method by reflection ({@code reflect}, {@code java_method}).
 * </ul>
 * The body of a view is checked by the analyzer alone while it resolves the view: such a check
 * passes ({@link #resolvingView}), the query around it being checked next.
 * A read of a view listing personal columns ({@code moulin.personal}) is appended to the audit
 * spool file, which moulin's driver copies into the audit trail.
 */
public final class QueryGuard extends AbstractFunction1<LogicalPlan, BoxedUnit> {
  private static volatile Object trusted;
  private static volatile Set<String> readers = Set.of();
  private static volatile String readerGroup = "analysts";
  private static volatile String spool;

  private static final Set<String> READ_COMMANDS = Set.of(
      "ShowTablesCommand", "ShowTables", "ShowTablesExtended", "ShowViews", "ShowViewsCommand",
      "ShowNamespaces", "ShowNamespacesCommand", "ShowColumns", "ShowColumnsCommand",
      "ShowTableProperties", "ShowTablePropertiesCommand", "DescribeRelation", "DescribeTableCommand",
      "DescribeColumn", "DescribeColumnCommand", "DescribeNamespace", "DescribeDatabaseCommand",
      "DescribeFunction", "DescribeFunctionCommand", "ShowFunctions", "ShowFunctionsCommand",
      "SetCatalogAndNamespace", "SetNamespaceCommand", "SetCatalogCommand", "ShowCatalogsCommand",
      "ShowCurrentNamespace", "ShowCurrentNamespaceCommand", "ExplainCommand", "DescribeQueryCommand",
      "ResetCommand");
  private static final Set<String> SAFE_LEAVES =
      Set.of("LocalRelation", "OneRowRelation", "Range", "CTERelationRef", "CommandResult");
  /** What the Thrift server runs for a client before its user is set: USE of the URL's database. */
  private static final Set<String> SESSION_OPENING = Set.of("SetCatalogAndNamespace", "SetNamespaceCommand");
  private static final Set<String> REFLECTION = Set.of("CallMethodViaReflection", "TryReflect");

  private final SparkSession session;

  public QueryGuard(SparkSession session) {
    this.session = session;
  }

  /**
   * Set by moulin's driver before the Thrift server starts: the driver's own session (trusted),
   * the readers (comma-separated users), the group they are readers by (for messages) and the
   * audit spool file (empty: no audit).
   */
  public static void configure(Object trustedSession, String readerList, String group, String spoolFile) {
    trusted = trustedSession;
    readers = new HashSet<>(Arrays.asList(readerList.split(",")));
    readers.remove("");
    readerGroup = group;
    spool = spoolFile == null || spoolFile.isEmpty() ? null : spoolFile;
  }

  @Override
  public BoxedUnit apply(LogicalPlan plan) {
    if ((trusted != null && session == trusted) || resolvingView()) {
      return BoxedUnit.UNIT;
    }
    String user = CurrentUserContext.CURRENT_USER().get();
    if (user == null || user.isEmpty()) {
      if (SESSION_OPENING.contains(plan.getClass().getSimpleName())) {
        return BoxedUnit.UNIT; // the database a client names in its URL, set as its session opens
      }
      throw new AccessRefused("this Spark session has no authenticated user: moulin's SQL endpoint answers "
          + "its JDBC/ODBC clients only");
    }
    if (!readers.contains(user)) {
      throw new AccessRefused("user " + user + " may not query moulin's SQL endpoint: it is in none of the "
          + "groups that read the curated zone (" + readerGroup + "); ask a platform admin to add " + user
          + " to the group " + readerGroup + " (setting hdfs.group_mapping)");
    }
    checkConf(user);
    check(plan, user);
    return BoxedUnit.UNIT;
  }

  /**
   * Whether the analyzer is checking the body of a view it is resolving (it checks each view's
   * body eagerly, alone, before the query around it). Only moulin's driver creates views, and the
   * query around the view is checked next, its views included: the body is judged there.
   */
  private static boolean resolvingView() {
    return StackWalker.getInstance().walk(frames -> frames.anyMatch(
        f -> f.getClassName().startsWith("org.apache.spark.sql.catalyst.analysis.ViewResolution")
            || f.getMethodName().contains("resolveViews")));
  }

  private void checkConf(String user) {
    scala.collection.Iterator<String> keys = session.sessionState().conf().getAllConfs().keysIterator();
    while (keys.hasNext()) {
      String key = keys.next();
      if (key.startsWith("spark.sql.catalog.")) {
        throw new AccessRefused(user + ": this session sets " + key + ": moulin's SQL endpoint serves its own "
            + "catalog only; reconnect without that option");
      }
    }
  }

  private void check(LogicalPlan plan, String user) {
    String name = plan.getClass().getSimpleName();
    if (plan instanceof View) {
      checkView((View) plan, user);
      return; // a view of the catalog: its body reads the exact files of its snapshot
    }
    if (plan instanceof Command) {
      checkCommand(plan, name, user);
      return;
    }
    if (plan.children().isEmpty() && !SAFE_LEAVES.contains(name)) {
      throw new AccessRefused(user + ": queries read the tables of moulin's catalog by name (<layer>.<table>; "
          + "SHOW TABLES IN gold lists them), not files or other tables: " + oneLine(plan) + " is refused");
    }
    scala.collection.Iterator<Expression> expressions = plan.expressions().iterator();
    while (expressions.hasNext()) {
      checkExpression(expressions.next(), user);
    }
    scala.collection.Iterator<LogicalPlan> children = plan.children().iterator();
    while (children.hasNext()) {
      check(children.next(), user);
    }
    scala.collection.Iterator<LogicalPlan> subqueries = plan.subqueries().iterator();
    while (subqueries.hasNext()) {
      check(subqueries.next(), user);
    }
  }

  private void checkView(View view, String user) {
    scala.collection.immutable.Map<String, String> properties = view.desc().properties();
    Option<String> refusal = properties.get("moulin.refusal");
    if (refusal.isDefined()) {
      throw new AccessRefused(refusal.get());
    }
    Option<String> table = properties.get("moulin.table");
    if (!table.isDefined()) {
      throw new AccessRefused(user + ": " + view.desc().identifier().unquotedString()
          + " is not a table of moulin's catalog: refused");
    }
    Option<String> personal = properties.get("moulin.personal");
    if (personal.isDefined() && !personal.get().isEmpty()) {
      audit(user, table.get(), properties.get("moulin.uri"), properties.get("moulin.version"), personal.get());
    }
  }

  private void checkCommand(LogicalPlan plan, String name, String user) {
    if (plan instanceof SetCommand) {
      Option<Tuple2<String, Option<String>>> kv = ((SetCommand) plan).kv();
      if (kv.isEmpty() || kv.get()._2().isEmpty()) {
        return; // lists or shows options
      }
      String key = kv.get()._1();
      if (key.startsWith("spark.sql.") && !key.startsWith("spark.sql.catalog")
          && !key.startsWith("spark.sql.extensions")) {
        return;
      }
      throw new AccessRefused(user + ": SET " + key + " is refused: a session may set spark.sql.* options only "
          + "(not spark.sql.catalog.*)");
    }
    if (!READ_COMMANDS.contains(name)) {
      throw new AccessRefused(user + ": moulin's SQL endpoint answers queries and reads of its catalog "
          + "(SELECT, SHOW, DESCRIBE, EXPLAIN, USE, SET spark.sql.*): " + name + " is refused");
    }
  }

  private void checkExpression(Expression expression, String user) {
    String name = expression.getClass().getSimpleName();
    if (REFLECTION.contains(name)) {
      throw new AccessRefused(user + ": reflect, try_reflect and java_method call Java methods inside the "
          + "server: refused");
    }
    scala.collection.Iterator<Expression> children = expression.children().iterator();
    while (children.hasNext()) {
      checkExpression(children.next(), user);
    }
    if (expression instanceof RuntimeReplaceable) {
      checkExpression(((RuntimeReplaceable) expression).replacement(), user);
    }
  }

  private static String oneLine(LogicalPlan plan) {
    String text = plan.simpleString(3).replaceAll("\\s+", " ");
    return text.length() > 200 ? text.substring(0, 200) + "..." : text;
  }

  private static void audit(String user, String table, Option<String> uri, Option<String> version, String columns) {
    String path = spool;
    if (path == null) {
      return;
    }
    String line = "{\"at\":" + json(Instant.now().toString()) + ",\"user\":" + json(user) + ",\"table\":"
        + json(table) + ",\"uri\":" + json(uri.isDefined() ? uri.get() : "") + ",\"version\":"
        + json(version.isDefined() ? version.get() : "") + ",\"columns\":" + json(columns) + "}\n";
    synchronized (QueryGuard.class) {
      try {
        Files.writeString(Path.of(path), line, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
            StandardOpenOption.APPEND);
      } catch (IOException e) {
        throw new AccessRefused(table + " holds personal data and its read cannot be audited (" + path + ": "
            + e.getMessage() + "): refused until the audit spool is writable");
      }
    }
  }

  private static String json(String text) {
    StringBuilder out = new StringBuilder("\"");
    for (char c : text.toCharArray()) {
      if (c == '"' || c == '\\') {
        out.append('\\').append(c);
      } else if (c < 0x20) {
        out.append(String.format("\\u%04x", (int) c));
      } else {
        out.append(c);
      }
    }
    return out.append('"').toString();
  }
}
