"""The root causes the diagnosis can name, as data: id, summary, rank, and the next step for each.

The ids are part of the kit's contract (reports, ``kit diagnose --json``, tests): keep them stable. The rank
orders causes when several checks fail at once: a cause that explains the others comes first (a stage serving
an older deployment makes every check of today's configuration moot; a missing ``$connect`` route, or a
throttle that refuses every handshake, makes every storage check moot; a denied PutItem explains an empty
table better than an idle-timeout disconnect does). Nothing here knows about the lab or its scenarios.

Each cause has a ``kind``: ``cause`` (a check found why), ``symptom`` (what the probe or the logs saw fail
while no check knows why: it ranks after every cause, so a known reason always wins, and before ``none``, so
what was seen is never overruled by an all-clear), ``inconclusive`` (evidence was not read, so nothing can be
cleared) and ``none``. The kind decides the exit code (:func:`exit_code`): 0 only for ``none``.

Two causes are about the investigation rather than the user's stack: ``target-not-found`` (what the kit was
pointed at is not there: the API, and the table, in that region and account) ranks before every cause, since
nothing found elsewhere in a wrong target means anything; ``evidence-missing`` (no check failed, but what an
all-clear stands on was not read) ranks just before ``none``, which it replaces.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

CauseKind = Literal["cause", "symptom", "inconclusive", "none"]

# The CLI contract (README): 0 nothing wrong, 1 something was found, 2 the kit could not do its work (a bad
# parameter, a target it could not resolve), 3 the diagnosis is inconclusive (evidence it needed was not read,
# or the target is not there): an inconclusive verdict never exits 0, and cron can tell it from a failure.
EXIT_INCONCLUSIVE: Final = 3
EXIT_CODES: Final[dict[CauseKind, int]] = {
    "none": 0,
    "cause": 1,
    "symptom": 1,
    "inconclusive": EXIT_INCONCLUSIVE,
}


@dataclass(frozen=True)
class Cause:
    id: str
    rank: int  # lower comes first
    summary: str
    next_step: str
    kind: CauseKind = "cause"


CAUSES: tuple[Cause, ...] = (
    Cause(
        "target-not-found",
        5,
        "What the kit was pointed at is not there: the WebSocket API (and the table) cannot be found in this "
        "region and account, so nothing read there says anything about your stack.",
        "Check the region (--region; the API's region is in its URL), the account (--profile, the env file's "
        "keys) and the API id (--websocket-url or --api-id); `aws apigatewayv2 get-apis --region <region>` "
        "lists the APIs of a region. Then run the diagnosis again.",
        "inconclusive",
    ),
    Cause(
        "stale-deployment",
        8,
        "The stage serves an older deployment: routes or integrations were changed after it and never "
        "deployed, so API Gateway still invokes what was deployed (an old $connect function, a route that is "
        "gone) and every check of today's configuration judges what does not run.",
        "Deploy the API to the stage (aws apigatewayv2 create-deployment --api-id <api> --stage-name "
        "<stage>), or turn AutoDeploy on; then check that get-stage names the new DeploymentId.",
    ),
    Cause(
        "connect-route-missing",
        10,
        "The $connect route has no integration, so connections are accepted and nothing runs to store them.",
        "Add a $connect route whose target is the connect integration (and redeploy the stage on AWS).",
    ),
    Cause(
        "invoke-permission-missing",
        11,
        "API Gateway may not invoke the $connect function: its resource policy has no statement letting "
        "apigateway.amazonaws.com call lambda:InvokeFunction for this API's $connect route (none at all, "
        "or a SourceArn naming another API, stage or route), so every handshake gets 500 and nothing runs.",
        "Let API Gateway invoke the function for the route: aws lambda add-permission --function-name "
        "<function> --statement-id apigateway-connect --action lambda:InvokeFunction --principal "
        "apigateway.amazonaws.com --source-arn arn:aws:execute-api:<region>:<account>:<api>/<stage>/$connect "
        "(no redeploy is needed: Lambda reads its policy on every call).",
    ),
    Cause(
        "authorizer-denied",
        12,
        "The $connect route's Lambda authorizer refuses the handshakes (401: an identity source is missing "
        "or the authorizer said Unauthorized; 403: its policy denies the method ARN), so $connect never runs "
        "and nothing is stored.",
        "Compare what the client sends with the authorizer's identity source and what its function accepts "
        "(its log says why it denied); fix the token or the authorizer, then deploy the stage (aws "
        "apigatewayv2 create-deployment). The kit does not detach or rewrite an authorizer: that would open "
        "$connect to anyone.",
    ),
    Cause(
        "connect-iam-denied",
        13,
        "The $connect route uses AWS_IAM and API Gateway refuses the handshakes (403) before $connect runs: "
        "the clients do not sign them with SigV4 for execute-api, or their IAM policies do not allow "
        "execute-api:Invoke on the route, so no connection opens and nothing is stored.",
        "Sign the handshake (presign the wss:// URL for execute-api in the API's region with the client's "
        "credentials) and allow execute-api:Invoke on arn:aws:execute-api:<region>:<account>:<api>/<stage>/"
        "$connect in the caller's policy (a wildcard must reach that deep: <api>/*/*); if browsers have no "
        "AWS credentials, set the route's AuthorizationType back to NONE (or CUSTOM with an authorizer) and "
        "redeploy.",
    ),
    Cause(
        "throttled",
        14,
        "API Gateway throttles the handshakes: the stage's route throttling for $connect (often 0/0, as "
        "Terraform or Pulumi write it when a route-settings block leaves the limits out) or the account's "
        "quota of new connections (500 a second per region) answers them 429 before $connect runs, so "
        "nothing is stored.",
        "Set both throttling limits of the stage explicitly: aws apigatewayv2 update-stage --api-id <api> "
        "--stage-name <stage> --default-route-settings ThrottlingBurstLimit=5000,ThrottlingRateLimit=10000 "
        "(and in --route-settings for $connect when it has its own), and write both fields in your "
        "infrastructure code. With no stage limit, the account's quota refused a burst of connections: "
        "reconnect with backoff and jitter, or ask for a higher quota (Service Quotas).",
    ),
    Cause(
        "connection-id-not-mapped",
        15,
        "$connect reaches an HTTP backend without the connectionId mapping, so the handler cannot know which "
        "connection to store.",
        "Map integration.request.header.ConnectionId to context.connectionId on the $connect integration.",
    ),
    Cause(
        "handler-crash",
        20,
        "The $connect handler fails before answering (an unhandled error), so API Gateway rejects the "
        "handshake.",
        "Read the [ERROR] line of the function's log and fix the handler or its Handler setting.",
    ),
    Cause(
        "authorizer-context-missing",
        23,
        "The $connect handler reads the user from the authorizer's context (requestContext.authorizer), "
        "which does not carry it, so the handler fails or skips the write.",
        "Return the user (e.g. userId) in the authorizer's context (string, number or boolean values) and "
        "deploy the stage, or have the handler authenticate the token itself; read the authorizer's answer "
        "in the execution log ('Authorizer result body before parsing').",
    ),
    Cause(
        "write-on-message",
        25,
        "The $connect handler writes nothing: the connection is stored only when the client later sends a "
        'message (a "join" action), so a client that never sends one, or sends it too early, is never '
        "stored.",
        "Store the connection in the $connect handler (connectionId, workspaceId from the query string); a "
        "client must not have to send a join message to be stored.",
    ),
    Cause(
        "write-not-awaited",
        27,
        "The $connect handler starts the PutItem but returns before it completes (a promise not awaited, a "
        "background thread), so Lambda freezes the environment mid-write: the write lands late, in another "
        "invocation, or never, and its errors are lost.",
        "Await the PutItem (await ddb.send(...) / no fire-and-forget thread) and answer only after it "
        "succeeded; answer 500 when it fails.",
    ),
    Cause(
        "put-access-denied",
        30,
        "The execution role is not allowed dynamodb:PutItem on the connections table, so every write fails.",
        "Allow dynamodb:PutItem on the table ARN in the execution role's policy (see iam-policies.json).",
    ),
    Cause(
        "table-not-found",
        35,
        "The handler writes to a table that does not exist (TABLE_NAME does not name the connections table).",
        "Set the function's TABLE_NAME to the connections table's exact name.",
    ),
    Cause(
        "wrong-region",
        40,
        "The handler writes to a same-named table in another region, so the table you read stays empty.",
        "Remove TABLE_REGION (or the hard-coded region) so the handler writes in the table's region.",
    ),
    Cause(
        "table-schema-mismatch",
        45,
        "The connections table's key or its workspaceIndex GSI differs from what the handler writes and "
        "queries, so writes or broadcasts fail.",
        "Recreate the table as kit.dynamo.schema.EXPECTED describes it (key connectionId S; GSI "
        "workspaceIndex on workspaceId S, projection ALL).",
    ),
    Cause(
        "table-write-denied",
        47,
        "The table refuses writes even from the kit's own credentials (AccessDenied or a KMS error on a "
        "direct PutItem), so no execution role can store anything: a resource-based policy or the table's "
        "KMS key denies it.",
        "Read the table's resource-based policy (aws dynamodb get-resource-policy) and its KMS key policy, "
        "and check that the kit's own identity may write; fix the Deny, then run the diagnosis again.",
    ),
    Cause(
        "workspace-id-missing",
        50,
        "Connections are stored without workspaceId, so the workspaceIndex GSI never sees them and "
        "broadcasts "
        "find nobody.",
        "Send workspaceId in the connection URL's query string and reject $connect without it (answer 400).",
    ),
    Cause(
        "index-access-denied",
        55,
        "The execution role may use the table but not its index (table/<name>/index/*), so broadcasts fail "
        "on Query.",
        "Add the index ARN (arn:aws:dynamodb:<region>:<account>:table/<name>/index/*) to the role's policy.",
    ),
    Cause(
        "early-disconnect",
        60,
        "Connections are stored and then removed almost at once by $disconnect (the client closes right "
        "away).",
        "Fix the client's reconnect loop or double mount, and check its disconnect codes (1001/1005/1009).",
    ),
    Cause(
        "route-selection-mismatch",
        62,
        "The API's route selection expression reads a field the clients' messages do not carry, so no route "
        "takes them: API Gateway answers each with the Forbidden frame and no broadcast runs.",
        "Set the API's RouteSelectionExpression to the field the clients put the route in (aws "
        "apigatewayv2 update-api --api-id <api> --route-selection-expression '$request.body.<field>'), then "
        "deploy the stage.",
    ),
    Cause(
        "manage-connections-denied",
        64,
        "The message function's role may not call execute-api:ManageConnections, so every PostToConnection "
        "is refused (403) and no broadcast reaches anyone.",
        "Allow execute-api:ManageConnections on arn:aws:execute-api:<region>:<account>:<api>/<stage>/POST/"
        "@connections/* in the execution role's policy (see iam-policies.json), or remove the Deny that "
        "blocks it.",
    ),
    Cause(
        "management-endpoint-wrong",
        66,
        "The message function posts to another @connections endpoint than the API's (another stage, API, "
        "domain or region), so its posts fail (403, 410 or no answer) and nobody receives the broadcast.",
        "Post to https://<api>.execute-api.<region>.amazonaws.com/<stage> of the API the clients are "
        "connected to (or build it from the event's requestContext.domainName and stage); fix or remove the "
        "variable that names another one.",
    ),
    Cause(
        "message-route-missing",
        68,
        "The route the clients' messages name is missing from the API, or created but not in the stage's "
        "deployment, so API Gateway answers them with the Forbidden frame and nothing is broadcast.",
        "Create the route (its target: the message integration) and deploy the stage (aws apigatewayv2 "
        "create-deployment --api-id <api> --stage-name <stage>); a route exists for clients only once "
        "deployed.",
    ),
    Cause(
        "target-unreachable",
        70,
        "An endpoint the kit reads (or the WebSocket URL the probe connects to) did not answer: connection "
        "refused, a timeout or a service unavailable. What lies behind it was not read, so the diagnosis is "
        "inconclusive; the app's own calls to it fail the same way if it is the app's endpoint too.",
        "Check that the endpoint named in the evidence is up and reachable (the lab: its engines; a real "
        "account: the network, the region, any endpoint override), then run the diagnosis again.",
        "inconclusive",
    ),
    Cause(
        "handshake-refused",
        80,
        "WebSocket handshakes are refused (no 101), so no connection opens and nothing is stored; no check "
        "knows why yet.",
        "Read API Gateway's execution log for those $connect requests: 'Execution failed due to "
        "configuration error' means API Gateway could not invoke the integration (the function's resource "
        "policy must let apigateway.amazonaws.com invoke it); a status the handler answered is in the "
        "function's log.",
        "symptom",
    ),
    Cause(
        "not-stored",
        85,
        "Connections open but their items never reach the table; no check knows why yet.",
        "Read the function's log for the $connect invocations of those connections (did it run, did it call "
        "PutItem, what did DynamoDB answer?) and API Gateway's execution log (was the integration invoked?).",
        "symptom",
    ),
    Cause(
        "not-delivered",
        90,
        "Messages sent on an open connection do not reach the other clients of the workspace (the seed's "
        "fourth symptom); no check knows why yet.",
        "An error frame 'Forbidden' means no route took the message: compare the API's route selection "
        "expression with the frame's fields and the route keys (and, on AWS, redeploy the stage). 'Internal "
        "server error' means the route's integration failed: read the function's log. No frame at all: read "
        "the message route's log for the index Query and the PostToConnection calls.",
        "symptom",
    ),
    Cause(
        "evidence-unread",
        95,
        "Some evidence could not be read (the kit's identity was refused, or the read failed), so the "
        "diagnosis is inconclusive: no check can clear what it did not see.",
        "Fix what the read-* findings name (a read permission for the kit's identity, a parameter), then "
        "run the diagnosis again.",
        "inconclusive",
    ),
    Cause(
        "evidence-missing",
        96,
        "No check failed, but what an all-clear stands on was not read (the API's $connect route, the table, "
        "a $connect seen answering, the role's PutItem), so the diagnosis cannot say connections are stored.",
        "Get what the evidence lists as missing (each says how), then run the diagnosis again.",
        "inconclusive",
    ),
    Cause("none", 1000, "No failing check: connections are stored and reachable.", "Nothing to fix.", "none"),
)

BY_ID: dict[str, Cause] = {cause.id: cause for cause in CAUSES}


def cause(cause_id: str) -> Cause:
    return BY_ID[cause_id]


def exit_code(cause_id: str) -> int:
    """The CLI's exit code for a root cause: :data:`EXIT_CODES` by its kind (an unknown id is a cause)."""
    chosen = BY_ID.get(cause_id)
    return EXIT_CODES[chosen.kind] if chosen is not None else EXIT_CODES["cause"]
