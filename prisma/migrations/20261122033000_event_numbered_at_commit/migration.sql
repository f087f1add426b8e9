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

-- Runs at COMMIT, once per event, in the order the events were inserted. A row inserted with a
-- number already (> 0) keeps it.
CREATE FUNCTION "Event_number_at_commit"() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  assigned bigint;
BEGIN
  IF NEW."sequence" > 0 THEN
    RETURN NULL;
  END IF;
  INSERT INTO "EventCounter" ("workspaceId", "mode", "lastSequence")
  VALUES (NEW."workspaceId", NEW."mode", 1)
  ON CONFLICT ("workspaceId", "mode") DO UPDATE SET "lastSequence" = "EventCounter"."lastSequence" + 1
  RETURNING "lastSequence" INTO assigned;
  UPDATE "Event" SET "sequence" = assigned WHERE "id" = NEW."id";
  -- A wake-up for the dispatchers; identical payloads are sent once per transaction.
  PERFORM pg_notify('refgraph_events', NEW."workspaceId"::text || ':' || NEW."mode"::text);
  RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER "Event_number_at_commit" AFTER INSERT ON "Event"
  DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION "Event_number_at_commit"();
