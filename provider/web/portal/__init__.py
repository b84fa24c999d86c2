"""The client portal: sign-up by invitation, terms, the account, money, codes and appointments."""
