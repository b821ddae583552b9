"""Re-encrypt every stored secret under the newest ENCRYPTION_KEY (key rotation).

Rotation: put the new key first in ENCRYPTION_KEY (`new,old`), restart, run
`flask --app app installations rotate-key`, then drop the old key. Every sealed column is
covered: connection credentials, agents' tokens, sign-ins in progress.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from .crypto import SecretBox
from .models import AgentGrant, AgentSignIn, Connection

SEALED = ((Connection, "credentials_encrypted"), (AgentGrant, "credentials_encrypted"),
          (AgentSignIn, "secret_encrypted"))


def rotate_all(db: Session, box: SecretBox) -> dict[str, int]:
    """Re-seal every secret under the first key, in one transaction (all or nothing).

    Raises SecretBoxError, changing nothing, if any secret opens with none of the keys.
    """
    counts: dict[str, int] = {}
    for model, column in SEALED:
        rows = db.scalars(select(model)).all()
        for row in rows:
            setattr(row, column, box.rotate(getattr(row, column)))
        counts[model.__tablename__] = len(rows)
    db.commit()
    return counts
