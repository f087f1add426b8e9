-- Events are numbered when their transaction commits, not when they are appended.
--
-- Before: appending an event took the tenant's EventCounter row lock, held to the end of the
-- transaction, so every writer of the tenant waited for the holder's remaining round trips and its
-- COMMIT (most of the time, for the holder's client to send the next statement). Now an event is
-- inserted with a provisional number (negative, unique), and a deferred constraint trigger gives
-- it the tenant's next number during COMMIT: the counter lock is taken inside the commit and held
-- only for the numbering and the commit itself. Sequence order is still commit order per tenant,
-- without gaps (a rolled-back transaction never reaches its commit triggers).

CREATE SEQUENCE "Event_provisional_seq" AS bigint;

ALTER TABLE "Event" ALTER COLUMN "sequence" SET DEFAULT (- nextval('"Event_provisional_seq"'::regclass));

ALTER TABLE "Event" DROP CONSTRAINT "Event_sequence_check";
ALTER TABLE "Event" ADD CONSTRAINT "Event_sequence_check" CHECK ("sequence" <> 0);

-- Runs at COMMIT, queued once per event in the order they were inserted. The first call of a
-- transaction numbers all of that transaction's events of the tenant at once (in insertion order:
-- provisional numbers fall as events are inserted), with one counter update, and stamps their
-- "occurredAt" with the commit's time, so that per tenant neither goes backwards; the other calls
-- find their event numbered already. Only this transaction's provisional events are visible: other
-- transactions' are uncommitted, and committed ones are numbered. An event deleted before the
-- commit is not numbered (no gap). A row inserted with a number (> 0: a writer of the counter's
-- own, as before this migration) keeps it; such a writer must advance the counter itself.
CREATE FUNCTION "Event_number_at_commit"() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
  pending bigint;
  assigned bigint;
BEGIN
  IF NEW."sequence" > 0 THEN
    RETURN NULL;
  END IF;
  PERFORM 1 FROM "Event" WHERE "id" = NEW."id" AND "sequence" < 0;
  IF NOT FOUND THEN
    RETURN NULL; -- numbered with an earlier event of this transaction, or deleted
  END IF;
  SELECT count(*) INTO pending FROM "Event"
   WHERE "workspaceId" = NEW."workspaceId" AND "mode" = NEW."mode" AND "sequence" < 0;
  INSERT INTO "EventCounter" ("workspaceId", "mode", "lastSequence")
  VALUES (NEW."workspaceId", NEW."mode", pending)
  ON CONFLICT ("workspaceId", "mode") DO UPDATE SET "lastSequence" = "EventCounter"."lastSequence" + pending
  RETURNING "lastSequence" INTO assigned;
  UPDATE "Event" e
     SET "sequence" = assigned - pending + p.k, "occurredAt" = clock_timestamp()
    FROM (SELECT "id", row_number() OVER (ORDER BY "sequence" DESC) AS k
            FROM "Event"
           WHERE "workspaceId" = NEW."workspaceId" AND "mode" = NEW."mode" AND "sequence" < 0) p
   WHERE e."id" = p."id";
  -- A wake-up for the dispatchers; identical payloads are sent once per transaction.
  PERFORM pg_notify('refgraph_events', NEW."workspaceId"::text || ':' || NEW."mode"::text);
  RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER "Event_number_at_commit" AFTER INSERT ON "Event"
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION "Event_number_at_commit"();
