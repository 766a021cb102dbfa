"""Invalidate cached user state whenever what it caches changes (grants, activity, tier, scope names)."""

from django.db.models.signals import m2m_changed, post_delete, post_save, pre_delete
from django.dispatch import receiver

from accounts import revocation
from accounts.models import Scope, Tier, User


@receiver(post_save, sender=User)
def user_saved(sender, instance: User, created: bool, **kwargs) -> None:
    if not created:
        revocation.cache_user_state_invalidate(instance.pk)


@receiver(post_delete, sender=User)
def user_deleted(sender, instance: User, **kwargs) -> None:
    revocation.cache_user_state_invalidate(instance.pk)


@receiver(m2m_changed, sender=User.scopes.through)
def user_scopes_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    if action not in ("post_add", "post_remove", "post_clear", "pre_clear"):
        return
    if not reverse:
        revocation.cache_user_state_invalidate(instance.pk)
        return
    # Changed from the Scope side: every affected user.
    user_ids = pk_set if pk_set else instance.users.values_list("pk", flat=True)
    for user_id in list(user_ids):
        revocation.cache_user_state_invalidate(user_id)


@receiver(post_save, sender=Tier)
def tier_saved(sender, instance: Tier, created: bool, **kwargs) -> None:
    # Cached user state carries the tier's limits: outdate it for every holder.
    if not created:
        revocation.cache_users_state_invalidate(list(instance.users.values_list("pk", flat=True)))


@receiver(post_save, sender=Scope)
def scope_saved(sender, instance: Scope, created: bool, **kwargs) -> None:
    if not created:
        for user_id in instance.users.values_list("pk", flat=True):
            revocation.cache_user_state_invalidate(user_id)


@receiver(pre_delete, sender=Scope)
def scope_deleted(sender, instance: Scope, **kwargs) -> None:
    # The through rows vanish without an m2m signal: invalidate the holders first.
    for user_id in instance.users.values_list("pk", flat=True):
        revocation.cache_user_state_invalidate(user_id)
