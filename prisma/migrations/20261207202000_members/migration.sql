-- Team members (issue 18): src/modules/member/README.md.
--
-- Member: a person of a workspace (not of a mode) with the role ADMIN or READ_ONLY, an argon2id
-- password hash once the one-time invitation (stored as a SHA-256 hash) has been accepted.
-- MemberSession: one signed-in session in one mode; the id is the SHA-256 of the cookie's token.
-- CreateEnum
CREATE TYPE "MemberStatus" AS ENUM ('INVITED', 'ACTIVE');

-- CreateTable
CREATE TABLE "Member" (
    "id" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "role" "Role" NOT NULL,
    "status" "MemberStatus" NOT NULL DEFAULT 'INVITED',
    "passwordHash" TEXT,
    "invitationHash" TEXT,
    "invitationExpiresAt" TIMESTAMPTZ(3),
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "joinedAt" TIMESTAMPTZ(3),

    CONSTRAINT "Member_pkey" PRIMARY KEY ("id"),
    -- Members are people of the company: never PARTNER.
    CONSTRAINT "Member_role_check" CHECK ("role" IN ('ADMIN', 'READ_ONLY')),
    -- An ACTIVE member has a password; an INVITED one an invitation.
    CONSTRAINT "Member_status_check" CHECK (
        ("status" = 'ACTIVE' AND "passwordHash" IS NOT NULL AND "joinedAt" IS NOT NULL)
        OR ("status" = 'INVITED' AND "invitationHash" IS NOT NULL AND "invitationExpiresAt" IS NOT NULL)
    )
);

-- CreateTable
CREATE TABLE "MemberSession" (
    "id" TEXT NOT NULL,
    "memberId" UUID NOT NULL,
    "workspaceId" UUID NOT NULL,
    "mode" "Mode" NOT NULL,
    "createdAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "lastSeenAt" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "expiresAt" TIMESTAMPTZ(3) NOT NULL,

    CONSTRAINT "MemberSession_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE UNIQUE INDEX "Member_invitationHash_key" ON "Member"("invitationHash");

-- CreateIndex
CREATE INDEX "Member_email_idx" ON "Member"("email");

-- CreateIndex
CREATE UNIQUE INDEX "Member_workspaceId_email_key" ON "Member"("workspaceId", "email");

-- CreateIndex
CREATE INDEX "MemberSession_memberId_idx" ON "MemberSession"("memberId");

-- CreateIndex
CREATE INDEX "MemberSession_workspaceId_idx" ON "MemberSession"("workspaceId");

-- CreateIndex
CREATE INDEX "MemberSession_expiresAt_idx" ON "MemberSession"("expiresAt");

-- AddForeignKey
ALTER TABLE "Member" ADD CONSTRAINT "Member_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "MemberSession" ADD CONSTRAINT "MemberSession_memberId_fkey" FOREIGN KEY ("memberId") REFERENCES "Member"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "MemberSession" ADD CONSTRAINT "MemberSession_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "Workspace"("id") ON DELETE CASCADE ON UPDATE CASCADE;
