-- Click quality (issue 15): clicks from bots and link previews are recorded as discarded with
-- the reason BOT, and one visitor's repeat clicks on a link within one UTC hour count once.

-- Why a discarded click does not count: BOT, PARTNER_INACTIVE, PARTNER_BANNED, PROGRAM_DRAFT,
-- PROGRAM_PAUSED, PROGRAM_ARCHIVED, ENROLLMENT_PENDING, ENROLLMENT_REJECTED. NULL for a counted
-- click, and for clicks discarded before this migration (their reason was not kept).
ALTER TABLE "Click" ADD COLUMN "discardReason" TEXT;

-- Whether the click is its visitor's first counted click on the link in its UTC hour (the click
-- writer sets it, see ClickVisitor). Clicks written before this migration were never
-- deduplicated: they count as unique (a constant default, so PostgreSQL adds the column without
-- rewriting the table).
ALTER TABLE "Click" ADD COLUMN "isUnique" BOOLEAN NOT NULL DEFAULT true;

-- The first counted click of each visitor (a hash of the IP hash and the user agent) on each
-- link in each UTC hour. The click writer inserts here ON CONFLICT DO NOTHING in the statement
-- that writes the batch: the rows it inserted are the unique clicks, on every instance alike.
-- No foreign key (checking one per click would cost, and a row outlives nothing: hours older
-- than the previous one are deleted by the click writer).
CREATE TABLE "ClickVisitor" (
    "hour" TIMESTAMPTZ(3) NOT NULL,
    "linkId" UUID NOT NULL,
    "visitor" BYTEA NOT NULL,
    "clickId" UUID NOT NULL,

    CONSTRAINT "ClickVisitor_pkey" PRIMARY KEY ("hour", "linkId", "visitor")
);
