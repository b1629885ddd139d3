from registry.models.access import API_KEY_SCOPES, ApiKey, Check, PermissionRequest, WorkAccess
from registry.models.audit import AuditChainHead, AuditEvent
from registry.models.disputes import Dispute, DisputeEvent, DisputeWork, EvidenceFile, SimilarityFlag
from registry.models.grants import Grant
from registry.models.hosts import VerifiedHost
from registry.models.invitations import Invitation, UserProfile
from registry.models.organizations import Membership, Organization
from registry.models.snapshots import LicenceSnapshot
from registry.models.uploads import BulkUpload, BulkUploadError
from registry.models.verification import VerificationRequest
from registry.models.works import ContentFile, PerceptualHash, Work, WorkIdentifier, WorkURL

__all__ = [
    "API_KEY_SCOPES",
    "ApiKey",
    "AuditChainHead",
    "AuditEvent",
    "BulkUpload",
    "BulkUploadError",
    "Check",
    "ContentFile",
    "Dispute",
    "DisputeEvent",
    "DisputeWork",
    "EvidenceFile",
    "Grant",
    "Invitation",
    "LicenceSnapshot",
    "Membership",
    "Organization",
    "PerceptualHash",
    "PermissionRequest",
    "SimilarityFlag",
    "UserProfile",
    "VerificationRequest",
    "VerifiedHost",
    "Work",
    "WorkAccess",
    "WorkIdentifier",
    "WorkURL",
]
