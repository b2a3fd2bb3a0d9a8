"""core tables

Revision ID: 0001
Revises: 
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('api_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('org', sa.String(length=32), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('key_prefix', sa.String(length=12), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key_hash')
    )
    op.create_table('feedback',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('from_org', sa.String(length=32), nullable=False),
    sa.Column('about_org', sa.String(length=32), nullable=False),
    sa.Column('case_references', sa.JSON(), nullable=False),
    sa.Column('reason_for_contact', sa.Text(), nullable=False),
    sa.Column('names_and_times', sa.Text(), nullable=False),
    sa.Column('correct_advice', sa.Text(), nullable=False),
    sa.Column('suggested_action', sa.Text(), nullable=False),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('mailbox', sa.String(length=254), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_key_id', sa.Uuid(), nullable=False),
    sa.ForeignKeyConstraint(['created_by_key_id'], ['api_keys.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_from_org_submitted_at', ['from_org', 'submitted_at'], unique=False)
        batch_op.create_index('ix_feedback_submitted_at', ['submitted_at'], unique=False)

    op.create_table('signposts',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('from_org', sa.String(length=32), nullable=False),
    sa.Column('to_org', sa.String(length=32), nullable=False),
    sa.Column('signposted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('sender_reference', sa.String(length=32), nullable=True),
    sa.Column('created_by_key_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_key_id'], ['api_keys.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('signposts', schema=None) as batch_op:
        batch_op.create_index('ix_signposts_from_org_created_at', ['from_org', 'created_at'], unique=False)
        batch_op.create_index('ix_signposts_signposted_at', ['signposted_at'], unique=False)

    op.create_table('transfers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('from_org', sa.String(length=32), nullable=False),
    sa.Column('to_org', sa.String(length=32), nullable=False),
    sa.Column('topic', sa.String(length=32), nullable=True),
    sa.Column('ivr_option', sa.Integer(), nullable=True),
    sa.Column('sender_reference', sa.String(length=32), nullable=True),
    sa.Column('wait_started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('wait_threshold_seconds', sa.Integer(), nullable=False),
    sa.Column('permission_to_share_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('connected_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failure_reason', sa.String(length=32), nullable=True),
    sa.Column('outcome_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_key_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_key_id'], ['api_keys.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.create_index('ix_transfers_from_org_created_at', ['from_org', 'created_at'], unique=False)
        batch_op.create_index('ix_transfers_outcome_at', ['outcome_at'], unique=False)

    op.create_table('callback_requests',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('transfer_id', sa.Uuid(), nullable=False),
    sa.Column('from_org', sa.String(length=32), nullable=False),
    sa.Column('to_org', sa.String(length=32), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=False),
    sa.Column('sender_reference', sa.String(length=32), nullable=False),
    sa.Column('permission_to_share_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('mailbox', sa.String(length=254), nullable=False),
    sa.Column('requested_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_key_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('personal_data_purged_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['created_by_key_id'], ['api_keys.id'], ),
    sa.ForeignKeyConstraint(['transfer_id'], ['transfers.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('transfer_id')
    )
    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.create_index('ix_callback_requests_from_org_requested_at', ['from_org', 'requested_at'], unique=False)

    op.create_table('caller_details',
    sa.Column('callback_request_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('contact_number', sa.String(length=20), nullable=False),
    sa.Column('provider', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['callback_request_id'], ['callback_requests.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('callback_request_id')
    )
    op.create_table('outbox_messages',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('callback_request_id', sa.Uuid(), nullable=True),
    sa.Column('feedback_id', sa.Uuid(), nullable=True),
    sa.Column('to_address', sa.String(length=254), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error_code', sa.String(length=64), nullable=True),
    sa.Column('last_error_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['callback_request_id'], ['callback_requests.id'], ),
    sa.ForeignKeyConstraint(['feedback_id'], ['feedback.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('callback_request_id'),
    sa.UniqueConstraint('feedback_id'),
    sa.UniqueConstraint('message_id')
    )
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_messages_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False)




def downgrade() -> None:
    
    with op.batch_alter_table('outbox_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_messages_status_next_attempt_at')

    op.drop_table('outbox_messages')
    op.drop_table('caller_details')
    with op.batch_alter_table('callback_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_callback_requests_from_org_requested_at')

    op.drop_table('callback_requests')
    with op.batch_alter_table('transfers', schema=None) as batch_op:
        batch_op.drop_index('ix_transfers_outcome_at')
        batch_op.drop_index('ix_transfers_from_org_created_at')

    op.drop_table('transfers')
    with op.batch_alter_table('signposts', schema=None) as batch_op:
        batch_op.drop_index('ix_signposts_signposted_at')
        batch_op.drop_index('ix_signposts_from_org_created_at')

    op.drop_table('signposts')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_submitted_at')
        batch_op.drop_index('ix_feedback_from_org_submitted_at')

    op.drop_table('feedback')
    op.drop_table('api_keys')

