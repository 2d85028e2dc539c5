"""Thin gRPC handlers for stratus.v1.Tokens (admin only, by the policy)."""

from __future__ import annotations

from typing import Any

from services.api.servicers import Ctx, bounded
from services.api.tokens import IssuedTokens
from stratus.v1 import tokens_pb2, tokens_pb2_grpc


@bounded
class TokensServicer(tokens_pb2_grpc.TokensServicer):
    def __init__(self, tokens: IssuedTokens) -> None:
        self.m = tokens

    async def CreateToken(self, request: tokens_pb2.CreateTokenRequest, context: Ctx) -> Any:
        return await self.m.create(request)

    async def RevokeToken(self, request: tokens_pb2.RevokeTokenRequest, context: Ctx) -> tokens_pb2.Token:
        return await self.m.revoke(request)

    async def ListTokens(self, request: tokens_pb2.ListTokensRequest, context: Ctx) -> Any:
        return await self.m.list(request)
